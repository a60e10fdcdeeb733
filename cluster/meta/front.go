package meta

import (
	"context"
	"fmt"
	"time"
)

// proposeFunc appends a command to the log and returns its Result once this
// node has applied it; an error if the command could not be committed (no
// leader, a timeout, a closed node).
type proposeFunc func(ctx context.Context, cmd []byte) (Result, error)

// catalog keeps the package contract over an FSM: writes become commands
// handed to propose, reads come from the FSM this node applies the log to.
// A read after a write through the same node sees the write, as propose
// returns only once the command is applied here.
type catalog struct {
	fsm     *FSM
	propose proposeFunc
	closed  func() bool // nil: never closed
}

func (c *catalog) check(ctx context.Context) error {
	if c.closed != nil && c.closed() {
		return ErrClosed
	}
	return ctx.Err()
}

// apply validates nothing: callers check their input first, so malformed
// input is refused before it reaches the log. Apply checks it again.
func (c *catalog) apply(ctx context.Context, t CommandType, body any) (Result, error) {
	if err := c.check(ctx); err != nil {
		return Result{}, err
	}
	cmd, err := encodeCommand(t, body)
	if err != nil {
		return Result{}, err
	}
	res, err := c.propose(ctx, cmd)
	if err != nil {
		return Result{}, err
	}
	return res, res.Err
}

// read runs fn on the FSM's state unless ctx is done.
func (c *catalog) read(ctx context.Context, fn func(s *state)) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	c.fsm.read(fn)
	return nil
}

// AddSource records a new source; see Local.AddSource.
func (c *catalog) AddSource(ctx context.Context, s Source) error {
	if err := checkSource(s); err != nil {
		return fmt.Errorf("add source %q: %w", s.Name, err)
	}
	if _, err := c.apply(ctx, AddSourceCommand, addSourceBody{Source: s}); err != nil {
		return fmt.Errorf("add source %s: %w", s.Name, err)
	}
	return nil
}

// Source returns the named source; ErrNotFound if there is none.
func (c *catalog) Source(ctx context.Context, name string) (Source, error) {
	var s Source
	var ok bool
	if err := c.read(ctx, func(st *state) { s, ok = st.source(name) }); err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	if !ok {
		return Source{}, fmt.Errorf("source %s: %w", name, ErrNotFound)
	}
	return s, nil
}

// Sources returns every source, sorted by name.
func (c *catalog) Sources(ctx context.Context) ([]Source, error) {
	var out []Source
	if err := c.read(ctx, func(st *state) { out = st.sourceList() }); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

// RemoveSource forgets a source; see Local.RemoveSource.
func (c *catalog) RemoveSource(ctx context.Context, name string) error {
	if _, err := c.apply(ctx, RemoveSourceCommand, removeSourceBody{Name: name}); err != nil {
		return fmt.Errorf("remove source %s: %w", name, err)
	}
	return nil
}

// CommitRestorePoint makes a restore point visible; see
// Local.CommitRestorePoint.
func (c *catalog) CommitRestorePoint(ctx context.Context, rp RestorePoint) error {
	if err := checkPoint(rp); err != nil {
		return fmt.Errorf("commit restore point %q: %w", rp.ID, err)
	}
	if _, err := c.apply(ctx, CommitRestorePointCommand, commitBody{Point: rp}); err != nil {
		return fmt.Errorf("commit restore point %s: %w", rp.ID, err)
	}
	return nil
}

// RestorePoint returns the restore point with the given ID; ErrNotFound if
// there is none.
func (c *catalog) RestorePoint(ctx context.Context, id string) (RestorePoint, error) {
	var rp RestorePoint
	var ok bool
	if err := c.read(ctx, func(st *state) { rp, ok = st.point(id) }); err != nil {
		return RestorePoint{}, fmt.Errorf("restore point %s: %w", id, err)
	}
	if !ok {
		return RestorePoint{}, fmt.Errorf("restore point %s: %w", id, ErrNotFound)
	}
	return rp, nil
}

// RestorePoints returns the restore points f selects, oldest first; equal
// times are ordered by ID.
func (c *catalog) RestorePoints(ctx context.Context, f Filter) ([]RestorePoint, error) {
	var out []RestorePoint
	if err := c.read(ctx, func(st *state) { out = st.pointList(f) }); err != nil {
		return nil, fmt.Errorf("list restore points: %w", err)
	}
	return out, nil
}

// Latest returns the newest restore point of an object whose verification
// has not failed; ErrNotFound if there is none.
func (c *catalog) Latest(ctx context.Context, source, object string) (RestorePoint, error) {
	var rp RestorePoint
	var ok bool
	if err := c.read(ctx, func(st *state) { rp, ok = st.latest(source, object) }); err != nil {
		return RestorePoint{}, fmt.Errorf("latest restore point of %s/%s: %w", source, object, err)
	}
	if !ok {
		return RestorePoint{}, fmt.Errorf("latest restore point of %s/%s: %w", source, object, ErrNotFound)
	}
	return rp, nil
}

// SetVerify records the outcome of verifying a restore point; ErrNotFound if
// there is no such restore point.
func (c *catalog) SetVerify(ctx context.Context, id string, v VerifyState) error {
	if err := checkVerify(v); err != nil {
		return fmt.Errorf("set verify state of %s: %w", id, err)
	}
	if _, err := c.apply(ctx, SetVerifyCommand, setVerifyBody{ID: id, Verify: v}); err != nil {
		return fmt.Errorf("set verify state of %s: %w", id, err)
	}
	return nil
}

// PutJob inserts a job or replaces the one with the same ID; see
// Local.PutJob.
func (c *catalog) PutJob(ctx context.Context, j Job) error {
	if err := checkJob(j); err != nil {
		return fmt.Errorf("put job %q: %w", j.ID, err)
	}
	if _, err := c.apply(ctx, PutJobCommand, putJobBody{Job: j}); err != nil {
		return fmt.Errorf("put job %s: %w", j.ID, err)
	}
	return nil
}

// Job returns the job with the given ID; ErrNotFound if there is none.
func (c *catalog) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	var ok bool
	if err := c.read(ctx, func(st *state) { j, ok = st.job(id) }); err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	if !ok {
		return Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, nil
}

// Jobs returns the jobs f selects, newest first by creation time, then by
// ID descending.
func (c *catalog) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var out []Job
	if err := c.read(ctx, func(st *state) { out = st.jobList(f) }); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// InterruptRunning marks node's queued or running jobs interrupted, finished
// at now, and returns them newest first; see Local.InterruptRunning.
func (c *catalog) InterruptRunning(ctx context.Context, node string, now time.Time) ([]Job, error) {
	res, err := c.apply(ctx, InterruptRunningCommand, interruptBody{Now: now, Node: node})
	if err != nil {
		return nil, fmt.Errorf("interrupt running jobs: %w", err)
	}
	return res.Jobs, nil
}

// PutKey stores a tenant's wrapped key; see Local.PutKey.
func (c *catalog) PutKey(ctx context.Context, k WrappedKey) error {
	if err := checkKey(k); err != nil {
		return fmt.Errorf("put key of tenant %q: %w", k.Tenant, err)
	}
	if _, err := c.apply(ctx, PutKeyCommand, putKeyBody{Key: k}); err != nil {
		return fmt.Errorf("put key of tenant %s: %w", k.Tenant, err)
	}
	return nil
}

// Keys returns every wrapped key, sorted by tenant.
func (c *catalog) Keys(ctx context.Context) ([]WrappedKey, error) {
	var out []WrappedKey
	if err := c.read(ctx, func(st *state) { out = st.keyList() }); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// SetNode adds a member or replaces the one with its ID; the placement
// epoch moves if anything changed.
func (c *catalog) SetNode(ctx context.Context, n Node) error {
	if err := checkNode(n); err != nil {
		return fmt.Errorf("set node %q: %w", n.ID, err)
	}
	if _, err := c.apply(ctx, SetNodeCommand, setNodeBody{Node: n}); err != nil {
		return fmt.Errorf("set node %s: %w", n.ID, err)
	}
	return nil
}

// RemoveNode removes a member; ErrNotFound if there is none.
func (c *catalog) RemoveNode(ctx context.Context, id string) error {
	if _, err := c.apply(ctx, RemoveNodeCommand, removeNodeBody{ID: id}); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

// Membership returns the members and the placement epoch.
func (c *catalog) Membership(ctx context.Context) (Membership, error) {
	var m Membership
	if err := c.read(ctx, func(st *state) { m = st.membership() }); err != nil {
		return Membership{}, fmt.Errorf("membership: %w", err)
	}
	return m, nil
}
