package api

import (
	"context"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// PolicyRequest creates a policy. Schedule is as appliance/policy parses
// it ("daily 02:00 Europe/Berlin"); Lock is a duration with a unit of h,
// d, w or y ("30d"); TZ names the zone retention buckets days in.
type PolicyRequest struct {
	Name        string `json:"name"`
	Schedule    string `json:"schedule,omitempty"`
	KeepLast    int    `json:"keep_last,omitempty"`
	KeepHourly  int    `json:"keep_hourly,omitempty"`
	KeepDaily   int    `json:"keep_daily,omitempty"`
	KeepWeekly  int    `json:"keep_weekly,omitempty"`
	KeepMonthly int    `json:"keep_monthly,omitempty"`
	KeepYearly  int    `json:"keep_yearly,omitempty"`
	Lock        string `json:"lock,omitempty"`
	TZ          string `json:"tz,omitempty"`
}

// AssignRequest applies a policy to "SOURCE" or "SOURCE/OBJECT".
type AssignRequest struct {
	Target string `json:"target"`
}

// PruneRequest asks for a prune; DryRun only reports.
type PruneRequest struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// PruneResult is what a prune kept and removed, per object.
type PruneResult struct {
	DryRun  bool          `json:"dry_run"`
	Kept    int           `json:"kept"`
	Removed int           `json:"removed"`
	Objects []PruneObject `json:"objects"`
}

// PruneObject is one object's share of a prune.
type PruneObject struct {
	Source  string        `json:"source"`
	Object  string        `json:"object"`
	Policy  string        `json:"policy"`
	Kept    []PrunedPoint `json:"kept"`
	Removed []PrunedPoint `json:"removed"`
}

// PrunedPoint is a restore point in a prune, with why it was kept (or, in
// Error, why it could not be removed).
type PrunedPoint struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Reasons []string  `json:"reasons,omitempty"`
	Error   string    `json:"error,omitempty"`
}

type policyList struct {
	Policies []meta.Policy `json:"policies"`
}

func (s *Server) createPolicy(r *http.Request) (int, any, error) {
	var req PolicyRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	if !meta.ValidName(req.Name) {
		return 0, nil, invalidf("policy name %q: use %s", req.Name, nameRule)
	}
	p, err := s.svc.CreatePolicy(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, p, nil
}

func (s *Server) listPolicies(r *http.Request) (int, any, error) {
	list, err := s.svc.Policies(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, policyList{orEmpty(list)}, nil
}

func (s *Server) assignPolicy(r *http.Request) (int, any, error) {
	var req AssignRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Target == "" {
		return 0, nil, invalidf("target is required: SOURCE or SOURCE/OBJECT")
	}
	p, err := s.svc.AssignPolicy(r.Context(), r.PathValue("name"), req.Target)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

func (s *Server) prune(r *http.Request) (int, any, error) {
	var req PruneRequest
	if err := decodeOptionalBody(r.Body, &req); err != nil {
		return 0, nil, err
	}
	res, err := s.svc.Prune(r.Context(), req.DryRun)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}

// CreatePolicy records a new policy.
func (c *Client) CreatePolicy(ctx context.Context, req PolicyRequest) (meta.Policy, error) {
	var out meta.Policy
	err := c.do(ctx, http.MethodPost, "/policies", nil, req, &out)
	return out, err
}

// Policies lists the policies.
func (c *Client) Policies(ctx context.Context) ([]meta.Policy, error) {
	var out policyList
	err := c.do(ctx, http.MethodGet, "/policies", nil, nil, &out)
	return out.Policies, err
}

// AssignPolicy applies a policy to a source or an object.
func (c *Client) AssignPolicy(ctx context.Context, name, target string) (meta.Policy, error) {
	var out meta.Policy
	err := c.do(ctx, http.MethodPost, "/policies/"+esc(name)+"/assign", nil, AssignRequest{Target: target}, &out)
	return out, err
}

// Prune deletes (or with dryRun lists) what the policies do not keep.
func (c *Client) Prune(ctx context.Context, dryRun bool) (PruneResult, error) {
	var out PruneResult
	err := c.do(ctx, http.MethodPost, "/prune", nil, PruneRequest{DryRun: dryRun}, &out)
	return out, err
}
