package meta

import (
	"io"

	"github.com/hashicorp/raft"
)

// raftFSM adapts FSM to hashicorp/raft. A panic in Apply (ErrBadCommand)
// stops the node, on purpose: see FSM.
type raftFSM struct{ fsm *FSM }

func (r raftFSM) Apply(l *raft.Log) any {
	return r.fsm.Apply(l.Data)
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
