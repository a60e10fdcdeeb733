package meta

import (
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// raftFSM adapts FSM to hashicorp/raft. A panic in Apply (ErrBadCommand)
// stops the node, on purpose: see FSM.
type raftFSM struct {
	fsm *FSM
	// applied is the index of the last entry Apply finished. raft's own
	// AppliedIndex moves when entries are handed to the FSM, before they
	// are applied, so it cannot tell when a read will see a write.
	applied *atomic.Uint64
}

func (r raftFSM) Apply(l *raft.Log) any {
	res := r.fsm.Apply(l.Data)
	r.applied.Store(l.Index)
	return res
}

func (r raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	return raftSnapshot{r.fsm.Snapshot()}, nil
}

func (r raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return r.fsm.Restore(rc)
}

type raftSnapshot struct{ s *Snapshot }

func (s raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.s.Persist(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s raftSnapshot) Release() { s.s.Release() }
