package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNotLeader is returned by ApplyCommand on a member that does not lead.
var ErrNotLeader = errors.New("not the leader")

// Forwarder sends a command to the leader (at its Raft address) and returns
// the leader's Result and the log index the command was applied at. A
// follower's writes go through it; the node layer implements it over the
// cluster's mutual-TLS transport.
type Forwarder func(ctx context.Context, leaderAddr string, cmd []byte) (Result, uint64, error)

// CheckCommand reports whether cmd is a command this version can apply: a
// known type whose body decodes, or an unknown type marked IgnoreUnknown.
// The leader checks every forwarded command with it before appending it to
// the log, because a command that does not decode stops every replica.
func CheckCommand(cmd []byte) error {
	if len(cmd) == 0 {
		return fmt.Errorf("empty command: %w", ErrInvalid)
	}
	t := CommandType(cmd[0]) &^ IgnoreUnknown
	var body any
	switch t {
	case AddSourceCommand:
		body = &addSourceBody{}
	case RemoveSourceCommand:
		body = &removeSourceBody{}
	case CommitRestorePointCommand:
		body = &commitBody{}
	case SetVerifyCommand:
		body = &setVerifyBody{}
	case PutJobCommand:
		body = &putJobBody{}
	case InterruptRunningCommand:
		body = &interruptBody{}
	case PutKeyCommand:
		body = &putKeyBody{}
	case SetNodeCommand:
		body = &setNodeBody{}
	case RemoveNodeCommand:
		body = &removeNodeBody{}
	case PutJoinTokenCommand:
		body = &putTokenBody{}
	case RedeemJoinTokenCommand:
		body = &redeemTokenBody{}
	case BeginGCCommand:
		body = &beginGCBody{}
	case EndGCCommand:
		body = &endGCBody{}
	case DeletePointCommand:
		body = &deletePointBody{}
	case PutPolicyCommand:
		body = &putPolicyBody{}
	case RemovePolicyCommand:
		body = &removePolicyBody{}
	case PutRunCommand:
		body = &putRunBody{}
	case TakeJobCommand:
		body = &takeJobBody{}
	case RenewLeaseCommand:
		body = &renewLeaseBody{}
	case CancelJobCommand:
		body = &cancelJobBody{}
	case ExpireLeasesCommand:
		body = &expireLeasesBody{}
	case FinishJobCommand:
		body = &putJobBody{}
	default:
		if CommandType(cmd[0])&IgnoreUnknown != 0 {
			return nil
		}
		return fmt.Errorf("unknown command type %d: %w", t, ErrInvalid)
	}
	if err := decode(cmd[1:], body); err != nil {
		return fmt.Errorf("command type %d: %v: %w", t, err, ErrInvalid)
	}
	return nil
}

// ApplyCommand appends cmd to the log if this member leads, and returns its
// Result and log index once applied here. It is the leader's half of a
// forwarded write.
func (r *Replicated) ApplyCommand(ctx context.Context, cmd []byte) (Result, uint64, error) {
	if r.isClosed() {
		return Result{}, 0, ErrClosed
	}
	if err := CheckCommand(cmd); err != nil {
		return Result{}, 0, err
	}
	if !r.IsLeader() {
		return Result{}, 0, ErrNotLeader
	}
	return r.applyHere(ctx, cmd)
}

func (r *Replicated) applyHere(ctx context.Context, cmd []byte) (Result, uint64, error) {
	f := r.raft.Apply(cmd, r.timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return Result{}, 0, ctx.Err()
	case err := <-done:
		switch {
		case errors.Is(err, raft.ErrRaftShutdown):
			return Result{}, 0, ErrClosed
		case errors.Is(err, raft.ErrNotLeader):
			return Result{}, 0, ErrNotLeader // not appended: safe to send again
		case errors.Is(err, raft.ErrLeadershipLost):
			// Appended, perhaps committed: sending it again could apply
			// it twice, so the caller must look before trying again.
			return Result{}, 0, fmt.Errorf("the leader stepped down while committing; the change may or may not have been made: %w", err)
		case err != nil:
			return Result{}, 0, fmt.Errorf("propose: %w", err)
		}
	}
	res, ok := f.Response().(Result)
	if !ok {
		return Result{}, 0, fmt.Errorf("propose: unexpected response %T", f.Response())
	}
	return res, f.Index(), nil
}

// waitApplied waits until this member has applied the log up to index, so a
// forwarded write is visible to reads here when propose returns.
func (r *Replicated) waitApplied(ctx context.Context, index uint64) error {
	deadline := time.Now().Add(r.timeout)
	for r.applied.Load() < index && r.snapshotIndex() < index {
		if time.Now().After(deadline) {
			return fmt.Errorf("entry %d committed on the leader but not yet applied here", index)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// WireResult is a Result as it crosses the network: an error becomes its
// message and the kind of sentinel it wraps.
type WireResult struct {
	Error   string  `json:"error,omitempty"`
	Kind    string  `json:"kind,omitempty"`
	Jobs    []Job   `json:"jobs,omitempty"`
	Ignored bool    `json:"ignored,omitempty"`
	GC      GCRound `json:"gc,omitzero"`
	Index   uint64  `json:"index"`
}

var errorKinds = map[string]error{
	"not_found": ErrNotFound, "exists": ErrExists, "conflict": ErrConflict,
	"invalid": ErrInvalid, "closed": ErrClosed, "not_leader": ErrNotLeader,
}

// EncodeResult turns a leader's answer into its wire form.
func EncodeResult(res Result, index uint64, err error) WireResult {
	w := WireResult{Jobs: res.Jobs, Ignored: res.Ignored, GC: res.GC, Index: index}
	if err == nil {
		err = res.Err
	}
	if err != nil {
		w.Error = err.Error()
		for k, sentinel := range errorKinds {
			if errors.Is(err, sentinel) {
				w.Kind = k
				break
			}
		}
	}
	return w
}

// Decode turns a wire answer back into a Result whose Err still matches the
// leader's sentinel with errors.Is.
func (w WireResult) Decode() (Result, uint64) {
	res := Result{Jobs: w.Jobs, Ignored: w.Ignored, GC: w.GC}
	if w.Error != "" {
		res.Err = &remoteError{msg: w.Error, kind: errorKinds[w.Kind]}
	}
	return res, w.Index
}

// ParseWireResult decodes a leader's JSON answer.
func ParseWireResult(b []byte) (WireResult, error) {
	var w WireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return WireResult{}, fmt.Errorf("leader's answer: %w", err)
	}
	if w.Kind != "" && errorKinds[w.Kind] == nil {
		return WireResult{}, fmt.Errorf("leader's answer: unknown error kind %q", w.Kind)
	}
	return w, nil
}

type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// snapshotIndex is the index of the last snapshot this member took or
// installed: a snapshot restored from the leader covers entries that Apply
// never saw here.
func (r *Replicated) snapshotIndex() uint64 {
	n, _ := strconv.ParseUint(r.raft.Stats()["last_snapshot_index"], 10, 64)
	return n
}
