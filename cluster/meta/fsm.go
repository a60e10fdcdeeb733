package meta

import (
	"fmt"
	"sync"
)

// FSM is the catalog as a replicated state machine: every replica applies
// the same log of commands (see CommandType) to the same in-memory state.
//
// Apply is deterministic: it reads no clock and no random source (times
// travel inside commands), iterates in sorted order wherever order shows,
// and returns refusals (ErrExists, ErrNotFound, ErrConflict, ErrInvalid) in
// its Result rather than failing, since a refusal is itself a replicated
// outcome. A log entry it cannot read is a different matter: Apply panics
// with an error wrapping ErrBadCommand, as a replica that skipped it would
// silently diverge from the others.
//
// An FSM is safe for concurrent use: reads may run while a command applies.
type FSM struct {
	mu sync.RWMutex
	st *state
}

// NewFSM returns an FSM with empty state.
func NewFSM() *FSM {
	return &FSM{st: newState()}
}

// Result is the outcome of applying one command.
type Result struct {
	// Err is the command's refusal, nil if it took effect.
	Err error
	// Jobs holds the jobs an InterruptRunning command interrupted, newest
	// first.
	Jobs []Job
	// Ignored reports a command of an unknown type marked IgnoreUnknown.
	Ignored bool
	// GC is the round a BeginGC command started.
	GC GCRound
}

// Apply applies one log entry. See FSM for what it promises.
func (f *FSM) Apply(entry []byte) Result {
	if len(entry) == 0 {
		panic(fmt.Errorf("meta: apply: empty entry: %w", ErrBadCommand))
	}
	t, body := CommandType(entry[0]), entry[1:]
	optional := t&IgnoreUnknown != 0
	t &^= IgnoreUnknown
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	switch t {
	case AddSourceCommand:
		var c addSourceBody
		decodeBody(t, body, &c)
		return Result{Err: s.addSource(c.Source)}
	case RemoveSourceCommand:
		var c removeSourceBody
		decodeBody(t, body, &c)
		return Result{Err: s.removeSource(c.Name)}
	case CommitRestorePointCommand:
		var c commitBody
		decodeBody(t, body, &c)
		return Result{Err: s.commit(c.Point)}
	case SetVerifyCommand:
		var c setVerifyBody
		decodeBody(t, body, &c)
		return Result{Err: s.setVerify(c.ID, c.Verify)}
	case PutJobCommand:
		var c putJobBody
		decodeBody(t, body, &c)
		return Result{Err: s.putJob(c.Job)}
	case InterruptRunningCommand:
		var c interruptBody
		decodeBody(t, body, &c)
		return Result{Jobs: s.interrupt(c.Node, c.Now)}
	case PutKeyCommand:
		var c putKeyBody
		decodeBody(t, body, &c)
		return Result{Err: s.putKey(c.Key)}
	case SetNodeCommand:
		var c setNodeBody
		decodeBody(t, body, &c)
		return Result{Err: s.setNode(c.Node)}
	case RemoveNodeCommand:
		var c removeNodeBody
		decodeBody(t, body, &c)
		return Result{Err: s.removeNode(c.ID)}
	case PutJoinTokenCommand:
		var c putTokenBody
		decodeBody(t, body, &c)
		return Result{Err: s.putToken(c.Token)}
	case RedeemJoinTokenCommand:
		var c redeemTokenBody
		decodeBody(t, body, &c)
		return Result{Err: s.redeemToken(c.Hash, c.Node, c.Now)}
	case BeginGCCommand:
		var c beginGCBody
		decodeBody(t, body, &c)
		r, err := s.beginGC(c.Round)
		return Result{Err: err, GC: r}
	case EndGCCommand:
		var c endGCBody
		decodeBody(t, body, &c)
		return Result{Err: s.endGC(c.Round)}
	case DeletePointCommand:
		var c deletePointBody
		decodeBody(t, body, &c)
		return Result{Err: s.deletePoint(c.ID, c.Now)}
	case PutPolicyCommand:
		var c putPolicyBody
		decodeBody(t, body, &c)
		return Result{Err: s.putPolicy(c.Policy)}
	case RemovePolicyCommand:
		var c removePolicyBody
		decodeBody(t, body, &c)
		return Result{Err: s.removePolicy(c.Name)}
	case PutRunCommand:
		var c putRunBody
		decodeBody(t, body, &c)
		return Result{Err: s.putRun(c.Run, c.Claim)}
	case TakeJobCommand:
		var c takeJobBody
		decodeBody(t, body, &c)
		return jobResult(s.takeJob(c))
	case RenewLeaseCommand:
		var c renewLeaseBody
		decodeBody(t, body, &c)
		return jobResult(s.renewLease(c))
	case CancelJobCommand:
		var c cancelJobBody
		decodeBody(t, body, &c)
		return jobResult(s.cancelJob(c))
	case ExpireLeasesCommand:
		var c expireLeasesBody
		decodeBody(t, body, &c)
		return Result{Jobs: s.expireLeases(c.Now)}
	case FinishJobCommand:
		var c putJobBody
		decodeBody(t, body, &c)
		return Result{Err: s.finishJob(c.Job)}
	}
	if optional {
		return Result{Ignored: true}
	}
	panic(fmt.Errorf("meta: apply: unknown command type %d: %w", t, ErrBadCommand))
}

// read runs fn on the current state under the read lock.
func (f *FSM) read(fn func(s *state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Membership returns the members and the placement epoch.
func (f *FSM) Membership() Membership {
	var m Membership
	f.read(func(s *state) { m = s.membership() })
	return m
}
