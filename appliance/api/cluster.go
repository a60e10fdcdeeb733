package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnhq/cairn/cluster/member"
	"github.com/cairnhq/cairn/cluster/meta"
)

// Cluster is what the API serves about the cluster; *member.Member is one.
type Cluster interface {
	IssueJoinToken(ctx context.Context) (string, time.Time, error)
	Status(ctx context.Context) (member.Status, error)
	Remove(ctx context.Context, id string) error
	// Address is where members reach this node: what --join takes.
	Address() string
}

// JoinToken is a new join token and how to use it.
type JoinToken struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	// Join is this node's cluster address, for the new node's --join.
	Join string `json:"join"`
}

func (s *Server) cluster() (Cluster, error) {
	if s.cl == nil {
		return nil, fmt.Errorf("this appliance runs without a cluster: %w", meta.ErrNotFound)
	}
	return s.cl, nil
}

func (s *Server) issueJoinToken(r *http.Request) (int, any, error) {
	cl, err := s.cluster()
	if err != nil {
		return 0, nil, err
	}
	tok, exp, err := cl.IssueJoinToken(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, JoinToken{Token: tok, Expires: exp, Join: cl.Address()}, nil
}

func (s *Server) clusterStatus(r *http.Request) (int, any, error) {
	cl, err := s.cluster()
	if err != nil {
		return 0, nil, err
	}
	st, err := cl.Status(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if st.Nodes == nil {
		st.Nodes = []member.NodeStatus{}
	}
	return http.StatusOK, st, nil
}

func (s *Server) removeNode(r *http.Request) (int, any, error) {
	cl, err := s.cluster()
	if err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if !meta.ValidName(id) {
		return 0, nil, invalidf("node id %q: use %s", id, nameRule)
	}
	if err := cl.Remove(r.Context(), id); err != nil {
		return 0, nil, err
	}
	st, err := cl.Status(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, st, nil
}

// IssueJoinToken asks the appliance for a join token.
func (c *Client) IssueJoinToken(ctx context.Context) (JoinToken, error) {
	var out JoinToken
	err := c.do(ctx, http.MethodPost, "/cluster/join-tokens", nil, struct{}{}, &out)
	return out, err
}

// ClusterStatus returns the cluster as its leader sees it.
func (c *Client) ClusterStatus(ctx context.Context) (member.Status, error) {
	var out member.Status
	err := c.do(ctx, http.MethodGet, "/cluster", nil, nil, &out)
	return out, err
}

// RemoveNode starts draining a node out of the cluster.
func (c *Client) RemoveNode(ctx context.Context, id string) (member.Status, error) {
	var out member.Status
	err := c.do(ctx, http.MethodDelete, "/cluster/nodes/"+id, nil, nil, &out)
	return out, err
}
