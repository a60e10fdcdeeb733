package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Replicated is the catalog of a cluster: writes go through the Raft log
// and are applied by every member's FSM; reads come from this member's FSM.
// It keeps the package contract on every member when a Forwarder sends
// followers' writes to the leader: a write returns once this member has
// applied it, so a read after a write through the same member sees it.
// Without a Forwarder a write on a follower fails with ErrNotLeader. Reads
// on a follower may lag the leader's. After Close every method returns
// ErrClosed.
type Replicated struct {
	catalog
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport raft.Transport
	timeout   time.Duration
	forward   Forwarder
	applied   atomic.Uint64 // see raftFSM

	mu     sync.Mutex
	closed bool
}

// Peer is a voting member of the initial configuration.
type Peer struct {
	ID      string
	Address string
}

// ReplicatedOptions configure OpenReplicated.
type ReplicatedOptions struct {
	// ID names this member; it must be a valid name (ValidName).
	ID string
	// Bind is the TCP address the Raft transport listens on; default
	// 127.0.0.1:0. Ignored if Transport is set.
	Bind string
	// Transport replaces the TCP transport, as tests do with raft's
	// in-memory one.
	Transport raft.Transport
	// Bootstrap starts a new cluster of this member and Peers if the data
	// directory holds no Raft state; otherwise it does nothing.
	Bootstrap bool
	Peers     []Peer
	// ApplyTimeout bounds a write's wait for the log; default 10 s.
	ApplyTimeout time.Duration
	// Config tunes Raft; nil means raft.DefaultConfig. Its LocalID is set
	// from ID.
	Config *raft.Config
	// Log receives Raft's log; default io.Discard.
	Log io.Writer
	// Forward, if set, sends a follower's writes to the leader; without it
	// a write on a follower fails with ErrNotLeader.
	Forward Forwarder
}

// OpenReplicated opens the member whose Raft state lives in dir (mode 0700),
// creating it if absent: a bbolt log and stable store and a file snapshot
// store. It returns before a leader is known; see WaitLeader.
func OpenReplicated(dir string, opts ReplicatedOptions) (_ *Replicated, err error) {
	if err := checkName("member id", opts.ID); err != nil {
		return nil, fmt.Errorf("open replicated catalog: %w", err)
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open replicated catalog: %w", err)
	}
	r := &Replicated{timeout: opts.ApplyTimeout, transport: opts.Transport, forward: opts.Forward}
	if r.timeout <= 0 {
		r.timeout = 10 * time.Second
	}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	if r.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("open replicated catalog %s: log store: %w", dir, err)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, logw)
	if err != nil {
		return nil, fmt.Errorf("open replicated catalog %s: snapshot store: %w", dir, err)
	}
	if r.transport == nil {
		bind := opts.Bind
		if bind == "" {
			bind = "127.0.0.1:0"
		}
		if r.transport, err = raft.NewTCPTransport(bind, nil, 3, 10*time.Second, logw); err != nil {
			return nil, fmt.Errorf("open replicated catalog: transport: %w", err)
		}
	}
	cfg := raft.DefaultConfig()
	if opts.Config != nil {
		c := *opts.Config
		cfg = &c
	}
	cfg.LocalID = raft.ServerID(opts.ID)
	if cfg.Logger == nil {
		cfg.LogOutput = logw
	}
	if opts.Bootstrap {
		exists, err := raft.HasExistingState(r.store, r.store, snaps)
		if err != nil {
			return nil, fmt.Errorf("open replicated catalog %s: %w", dir, err)
		}
		if !exists {
			conf := raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: r.transport.LocalAddr()}}}
			for _, p := range opts.Peers {
				conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
			}
			if err := raft.BootstrapCluster(cfg, r.store, r.store, snaps, r.transport, conf); err != nil {
				return nil, fmt.Errorf("open replicated catalog %s: bootstrap: %w", dir, err)
			}
		}
	}
	fsm := NewFSM()
	if r.raft, err = raft.NewRaft(cfg, raftFSM{fsm: fsm, applied: &r.applied}, r.store, r.store, snaps, r.transport); err != nil {
		return nil, fmt.Errorf("open replicated catalog %s: %w", dir, err)
	}
	r.catalog = catalog{fsm: fsm, propose: r.propose, closed: r.isClosed}
	return r, nil
}

// Addr returns the address of this member's Raft transport.
func (r *Replicated) Addr() string { return string(r.transport.LocalAddr()) }

// Leader returns the ID of the leader this member knows, or "".
func (r *Replicated) Leader() string {
	_, id := r.raft.LeaderWithID()
	return string(id)
}

// IsLeader reports whether this member leads.
func (r *Replicated) IsLeader() bool { return r.raft.State() == raft.Leader }

// WaitLeader polls until this member knows a leader and returns its ID. If
// that is this member, it also waits until every earlier entry of the log is
// applied here, so reads see them.
func (r *Replicated) WaitLeader(ctx context.Context) (string, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if r.isClosed() {
			return "", ErrClosed
		}
		if id := r.Leader(); id != "" {
			if !r.IsLeader() {
				return id, nil
			}
			if err := r.raft.Barrier(r.timeout).Error(); err == nil {
				return id, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for a leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// propose appends cmd to the log and waits until this member applied it; a
// follower forwards it to the leader and waits until it has applied the
// leader's entry itself. If ctx ends first the command may still be applied.
func (r *Replicated) propose(ctx context.Context, cmd []byte) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for {
		if r.IsLeader() || r.forward == nil {
			res, _, err := r.applyHere(ctx, cmd)
			if errors.Is(err, ErrNotLeader) && r.forward != nil {
				continue // lost the lead on the way: forward to the next leader
			}
			return res, err
		}
		addr, _ := r.raft.LeaderWithID()
		if addr == "" {
			if _, err := r.WaitLeader(ctx); err != nil {
				return Result{}, err
			}
			continue
		}
		res, index, err := r.forward(ctx, string(addr), cmd)
		if errors.Is(err, ErrNotLeader) {
			// Leadership moved between our look and the leader's; ask again.
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("forward to the leader at %s: %w", addr, err)
		}
		if err := r.waitApplied(ctx, index); err != nil {
			return Result{}, err
		}
		return res, nil
	}
}

func (r *Replicated) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops this member and releases its files. It is safe to call more
// than once.
func (r *Replicated) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	var errs []error
	if err := r.raft.Shutdown().Error(); err != nil {
		errs = append(errs, err)
	}
	// Shutdown closed the transport.
	if err := r.store.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close replicated catalog: %w", err)
	}
	return nil
}

// release closes the transport and the store, whichever are open, when
// OpenReplicated fails.
func (r *Replicated) release() error {
	var errs []error
	if c, ok := r.transport.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	return errors.Join(errs...)
}

// AddVoter adds a member to the Raft configuration, or updates its
// address; only the leader can.
func (r *Replicated) AddVoter(ctx context.Context, id, addr string) error {
	if !r.IsLeader() {
		return ErrNotLeader
	}
	if err := r.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, r.timeout).Error(); err != nil {
		return fmt.Errorf("add %s to the raft configuration: %w", id, err)
	}
	return nil
}

// AddNonvoter adds a member that receives the log but does not vote, as a
// joining node does until it has caught up; only the leader can.
func (r *Replicated) AddNonvoter(ctx context.Context, id, addr string) error {
	if !r.IsLeader() {
		return ErrNotLeader
	}
	if err := r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, r.timeout).Error(); err != nil {
		return fmt.Errorf("add %s to the raft configuration: %w", id, err)
	}
	return nil
}

// RemoveServer removes a member from the Raft configuration; only the
// leader can.
func (r *Replicated) RemoveServer(ctx context.Context, id string) error {
	if !r.IsLeader() {
		return ErrNotLeader
	}
	if err := r.raft.RemoveServer(raft.ServerID(id), 0, r.timeout).Error(); err != nil {
		return fmt.Errorf("remove %s from the raft configuration: %w", id, err)
	}
	return nil
}

// Server is one member of the Raft configuration.
type Server struct {
	Address string
	Voter   bool
}

// Servers returns the Raft configuration by member ID.
func (r *Replicated) Servers() (map[string]Server, error) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	out := map[string]Server{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = Server{Address: string(s.Address), Voter: s.Suffrage == raft.Voter}
	}
	return out, nil
}

// LeaderAddr returns the Raft address of the leader this member knows, or "".
func (r *Replicated) LeaderAddr() string {
	addr, _ := r.raft.LeaderWithID()
	return string(addr)
}
