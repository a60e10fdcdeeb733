package meta

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// mustCmd encodes a command or fails the test.
func mustCmd(t testing.TB, ct CommandType, body any) []byte {
	t.Helper()
	b, err := encodeCommand(ct, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustApply applies entries and fails the test on a refusal.
func mustApply(t testing.TB, f *FSM, entries ...[]byte) {
	t.Helper()
	for _, e := range entries {
		if res := f.Apply(e); res.Err != nil {
			t.Fatalf("apply command %d: %v", e[0], res.Err)
		}
	}
}

// persisted returns what f's snapshot streams.
func persisted(t testing.TB, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	s := f.Snapshot()
	defer s.Release()
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// view returns a read-only view of f's state.
func view(f *FSM) *state { return f.Snapshot().st }

func testNode(id string) Node {
	return Node{ID: id, Address: "127.0.0.1:7" + id[len(id)-1:] + "00", Labels: map[string]string{"rack": "r1"}, State: NodeActive}
}

func testPolicy(name string, targets ...string) Policy {
	return Policy{Name: name, Schedule: "daily 02:00", Retention: Retention{KeepLast: 3, KeepDaily: 7, LockSeconds: 86400},
		Targets: targets, Created: t0}
}

func testRun(slot time.Time, state string) Run {
	return Run{Policy: "gold", Source: "nas", Object: "vm-1", Slot: slot, State: state, Job: "job-1", Attempts: 1}
}

// testToken is a join token issued at t0 for 15 minutes.
func testToken(n byte) JoinToken {
	return JoinToken{Hash: strings.Repeat(fmt.Sprintf("%02x", n), 32), Expires: t0.Add(15 * time.Minute)}
}

func testKey(tenant string, id byte) WrappedKey {
	return WrappedKey{Tenant: tenant, KeyID: chunk.KeyID{id}, Wrapped: []byte("sealed-" + tenant), Created: t0}
}

func TestApplyEveryCommand(t *testing.T) {
	running := Job{ID: "job-1", Kind: JobBackup, State: JobRunning, Source: "nas", Created: t0}
	queued := Job{ID: "job-2", Kind: JobBackup, State: JobQueued, Source: "nas", Object: "vm1", Created: t0, Policy: "gold", Slot: t0}
	now := t0.Add(time.Hour)
	tests := []struct {
		name  string
		setup func(t *testing.T) [][]byte
		cmd   func(t *testing.T) []byte
		want  error
		check func(t *testing.T, s *state, res Result)
	}{
		{"add source", nil,
			func(t *testing.T) []byte { return mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if got, ok := s.source("nas"); !ok || !reflect.DeepEqual(got, testSource("nas")) {
					t.Errorf("source = %+v, %v", got, ok)
				}
			}},
		{"add source twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")})}
		}, func(t *testing.T) []byte { return mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}) },
			ErrExists, nil},
		{"add invalid source", nil,
			func(t *testing.T) []byte { return mustCmd(t, AddSourceCommand, addSourceBody{Source{Name: "NAS"}}) },
			ErrInvalid, func(t *testing.T, s *state, _ Result) {
				if len(s.sources) != 0 {
					t.Errorf("invalid source stored")
				}
			}},
		{"remove source", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")})}
		}, func(t *testing.T) []byte { return mustCmd(t, RemoveSourceCommand, removeSourceBody{"nas"}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if _, ok := s.source("nas"); ok {
					t.Error("source still there")
				}
			}},
		{"remove missing source", nil,
			func(t *testing.T) []byte { return mustCmd(t, RemoveSourceCommand, removeSourceBody{"nas"}) },
			ErrNotFound, nil},
		{"commit restore point", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")})}
		}, func(t *testing.T) []byte {
			rp := testPoint("rp-1", "nas", "vm-1", t0)
			rp.Tenant, rp.Verify = "", VerifyState{}
			return mustCmd(t, CommitRestorePointCommand, commitBody{rp})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if got, ok := s.latest("nas", "vm-1"); !ok || !reflect.DeepEqual(got, testPoint("rp-1", "nas", "vm-1", t0)) {
				t.Errorf("latest = %+v, %v", got, ok)
			}
		}},
		{"commit to missing source", nil, func(t *testing.T) []byte {
			return mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-1", "nas", "vm-1", t0)})
		}, ErrNotFound, nil},
		{"set verify", func(t *testing.T) [][]byte {
			return [][]byte{
				mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-1", "nas", "vm-1", t0)}),
			}
		}, func(t *testing.T) []byte {
			return mustCmd(t, SetVerifyCommand, setVerifyBody{"rp-1", VerifyState{State: VerifyFailed, At: now, Error: "corrupt"}})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if rp, _ := s.point("rp-1"); rp.Verify.State != VerifyFailed || !rp.Verify.At.Equal(now) {
				t.Errorf("verify = %+v", rp.Verify)
			}
			if _, ok := s.latest("nas", "vm-1"); ok {
				t.Error("a failed restore point is still the latest")
			}
		}},
		{"set verify of missing point", nil, func(t *testing.T) []byte {
			return mustCmd(t, SetVerifyCommand, setVerifyBody{"rp-1", VerifyState{State: VerifyOK}})
		}, ErrNotFound, nil},
		{"put job", nil,
			func(t *testing.T) []byte { return mustCmd(t, PutJobCommand, putJobBody{running}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if got, ok := s.job("job-1"); !ok || !reflect.DeepEqual(got, running) {
					t.Errorf("job = %+v, %v", got, ok)
				}
				if _, ok := s.active["job-1"]; !ok {
					t.Error("running job not active")
				}
			}},
		{"interrupt running", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{running})}
		}, func(t *testing.T) []byte { return mustCmd(t, InterruptRunningCommand, interruptBody{Now: now}) },
			nil, func(t *testing.T, s *state, res Result) {
				if len(res.Jobs) != 1 || !res.Jobs[0].Finished.Equal(now) || res.Jobs[0].State != JobInterrupted {
					t.Errorf("result jobs = %+v", res.Jobs)
				}
				if j, _ := s.job("job-1"); j.State != JobInterrupted || !j.Finished.Equal(now) || len(s.active) != 0 {
					t.Errorf("stored job = %+v, active %v", j, s.active)
				}
			}},
		{"put key", nil,
			func(t *testing.T) []byte { return mustCmd(t, PutKeyCommand, putKeyBody{testKey("acme", 1)}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if got := s.keyList(); !reflect.DeepEqual(got, []WrappedKey{testKey("acme", 1)}) {
					t.Errorf("keys = %+v", got)
				}
			}},
		{"put key id twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutKeyCommand, putKeyBody{testKey("acme", 1)})}
		}, func(t *testing.T) []byte { return mustCmd(t, PutKeyCommand, putKeyBody{testKey("globex", 1)}) },
			ErrExists, nil},
		{"set node", nil,
			func(t *testing.T) []byte { return mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")}) },
			nil, func(t *testing.T, s *state, _ Result) {
				want := Membership{Epoch: 1, Nodes: []Node{testNode("n1")}}
				if got := s.membership(); !reflect.DeepEqual(got, want) {
					t.Errorf("membership = %+v, want %+v", got, want)
				}
			}},
		{"set node unchanged keeps the epoch", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")})}
		}, func(t *testing.T) []byte { return mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if s.epoch != 1 {
					t.Errorf("epoch = %d, want 1", s.epoch)
				}
			}},
		{"set node draining moves the epoch", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")})}
		}, func(t *testing.T) []byte {
			n := testNode("n1")
			n.State = NodeDraining
			return mustCmd(t, SetNodeCommand, setNodeBody{n})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if m := s.membership(); m.Epoch != 2 || m.Nodes[0].State != NodeDraining {
				t.Errorf("membership = %+v", m)
			}
		}},
		{"set invalid node", nil, func(t *testing.T) []byte {
			return mustCmd(t, SetNodeCommand, setNodeBody{Node{ID: "n1", Address: "x", State: "asleep"}})
		}, ErrInvalid, nil},
		{"remove node", func(t *testing.T) [][]byte {
			return [][]byte{
				mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")}),
				mustCmd(t, SetNodeCommand, setNodeBody{testNode("n2")}),
			}
		}, func(t *testing.T) []byte { return mustCmd(t, RemoveNodeCommand, removeNodeBody{"n1"}) },
			nil, func(t *testing.T, s *state, _ Result) {
				want := Membership{Epoch: 3, Nodes: []Node{testNode("n2")}}
				if got := s.membership(); !reflect.DeepEqual(got, want) {
					t.Errorf("membership = %+v, want %+v", got, want)
				}
			}},
		{"remove missing node", nil,
			func(t *testing.T) []byte { return mustCmd(t, RemoveNodeCommand, removeNodeBody{"n1"}) },
			ErrNotFound, nil},
		{"put join token", nil,
			func(t *testing.T) []byte { return mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)}) },
			nil, func(t *testing.T, s *state, _ Result) {
				if got := s.tokens[testToken(1).Hash]; got != testToken(1) {
					t.Errorf("token = %+v", got)
				}
			}},
		{"put join token twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)})}
		}, func(t *testing.T) []byte { return mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)}) },
			ErrExists, nil},
		{"put bad join token", nil,
			func(t *testing.T) []byte { return mustCmd(t, PutJoinTokenCommand, putTokenBody{JoinToken{Hash: "ab"}}) },
			ErrInvalid, nil},
		{"redeem join token", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RedeemJoinTokenCommand, redeemTokenBody{testToken(1).Hash, "n2", t0})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if got := s.tokens[testToken(1).Hash]; got.UsedBy != "n2" {
				t.Errorf("token = %+v, want used by n2", got)
			}
		}},
		{"redeem join token twice", func(t *testing.T) [][]byte {
			return [][]byte{
				mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)}),
				mustCmd(t, RedeemJoinTokenCommand, redeemTokenBody{testToken(1).Hash, "n2", t0}),
			}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RedeemJoinTokenCommand, redeemTokenBody{testToken(1).Hash, "n3", t0})
		}, ErrTokenUsed, nil},
		{"redeem expired join token", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJoinTokenCommand, putTokenBody{testToken(1)})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RedeemJoinTokenCommand, redeemTokenBody{testToken(1).Hash, "n2", testToken(1).Expires})
		}, ErrTokenExpired, nil},
		{"redeem unknown join token", nil, func(t *testing.T) []byte {
			return mustCmd(t, RedeemJoinTokenCommand, redeemTokenBody{testToken(1).Hash, "n2", t0})
		}, ErrTokenUnknown, nil},
		{"begin gc", nil, func(t *testing.T) []byte {
			return mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Job: "job-g", Started: t0, Cutoff: t0.Add(-time.Hour)}})
		}, nil, func(t *testing.T, s *state, res Result) {
			if res.GC.Epoch != 1 || s.gc.State != GCRunning || s.gc.Job != "job-g" {
				t.Errorf("gc = %+v, result %+v", s.gc, res.GC)
			}
		}},
		{"begin gc while one runs", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Started: t0, Cutoff: t0}})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Started: t0.Add(time.Hour), Cutoff: t0}})
		}, ErrConflict, nil},
		{"begin gc after a stale one", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Started: t0, Cutoff: t0}})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Started: t0.Add(GCStaleAfter), Cutoff: t0}})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if s.gc.Epoch != 2 {
				t.Errorf("gc = %+v", s.gc)
			}
		}},
		{"end gc", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, BeginGCCommand, beginGCBody{GCRound{Started: t0, Cutoff: t0}})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, EndGCCommand, endGCBody{GCRound{Epoch: 1, State: GCDone, Finished: t0.Add(time.Minute), BytesReclaimed: 99}})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if s.gc.State != GCDone || s.gc.BytesReclaimed != 99 {
				t.Errorf("gc = %+v", s.gc)
			}
		}},
		{"delete restore point", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-1", "nas", "vm-1", t0)}),
				mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-2", "nas", "vm-1", t0.Add(time.Hour))})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, DeletePointCommand, deletePointBody{"rp-2", t0.Add(2 * time.Hour)})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if _, ok := s.points["rp-2"]; ok || len(s.byObject[objectIndexKey("nas", "vm-1")]) != 1 || s.bySource["nas"] != 1 {
				t.Errorf("after delete: %v %v %v", s.points, s.byObject, s.bySource)
			}
		}},
		{"delete locked restore point", func(t *testing.T) [][]byte {
			rp := testPoint("rp-1", "nas", "vm-1", t0)
			rp.LockedUntil = t0.Add(30 * 24 * time.Hour)
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, CommitRestorePointCommand, commitBody{rp})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, DeletePointCommand, deletePointBody{"rp-1", t0.Add(30*24*time.Hour - time.Second)})
		}, ErrConflict, nil},
		{"delete the base of a running backup", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-1", "nas", "vm-1", t0)}),
				mustCmd(t, PutJobCommand, putJobBody{Job{ID: "job-9", Kind: JobBackup, State: JobRunning, Source: "nas", Created: t0, Base: "rp-1"}})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, DeletePointCommand, deletePointBody{"rp-1", t0})
		}, ErrConflict, nil},
		{"delete missing restore point", nil, func(t *testing.T) []byte {
			return mustCmd(t, DeletePointCommand, deletePointBody{"rp-1", t0})
		}, ErrNotFound, nil},
		{"put policy", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("gold", "nas/vm-1")})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if p, ok := s.policyFor("nas", "vm-1"); !ok || p.Name != "gold" {
				t.Errorf("policy for nas/vm-1 = %+v, %v", p, ok)
			}
			if _, ok := s.policyFor("nas", "vm-2"); ok {
				t.Error("a policy assigned to one object applies to another")
			}
		}},
		{"an object's policy wins over its source's", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("bronze", "nas")})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("gold", "nas/vm-1")})
		}, nil, func(t *testing.T, s *state, _ Result) {
			a, _ := s.policyFor("nas", "vm-1")
			b, _ := s.policyFor("nas", "vm-2")
			if a.Name != "gold" || b.Name != "bronze" {
				t.Errorf("policies %s and %s", a.Name, b.Name)
			}
		}},
		{"assign a target twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}),
				mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("bronze", "nas")})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("gold", "nas")})
		}, ErrConflict, nil},
		{"policy on a missing source", nil, func(t *testing.T) []byte {
			return mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("gold", "nas")})
		}, ErrNotFound, nil},
		{"remove policy", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutPolicyCommand, putPolicyBody{testPolicy("gold")})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RemovePolicyCommand, removePolicyBody{"gold"})
		}, nil, nil},
		{"remove missing policy", nil, func(t *testing.T) []byte {
			return mustCmd(t, RemovePolicyCommand, removePolicyBody{"gold"})
		}, ErrNotFound, nil},
		{"claim run", nil, func(t *testing.T) []byte {
			return mustCmd(t, PutRunCommand, putRunBody{testRun(t0, RunClaimed), true})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if len(s.runs) != 1 {
				t.Errorf("runs = %v", s.runs)
			}
		}},
		{"claim a run twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutRunCommand, putRunBody{testRun(t0, RunClaimed), true})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, PutRunCommand, putRunBody{testRun(t0, RunClaimed), true})
		}, ErrExists, nil},
		{"update a run that was never claimed", nil, func(t *testing.T) []byte {
			return mustCmd(t, PutRunCommand, putRunBody{testRun(t0, RunDone), false})
		}, ErrNotFound, nil},
		{"a finished run forgets older ones", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutRunCommand, putRunBody{testRun(t0, RunDone), true}),
				mustCmd(t, PutRunCommand, putRunBody{testRun(t0.Add(time.Hour), RunClaimed), true})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, PutRunCommand, putRunBody{testRun(t0.Add(time.Hour), RunDone), false})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if len(s.runs) != 1 {
				t.Errorf("runs = %v", s.runs)
			}
		}},
		{"take a queued job", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute), PerSource: 1})
		}, nil, func(t *testing.T, s *state, res Result) {
			j := s.jobs[queued.ID]
			if j.State != JobRunning || j.Node != "n1" || !j.Lease.Equal(now.Add(time.Minute)) || !j.Started.Equal(now) || len(res.Jobs) != 1 {
				t.Errorf("job = %+v, result %+v", j, res)
			}
		}},
		{"take a job of a busy source", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{running}), mustCmd(t, PutJobCommand, putJobBody{queued})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute), PerSource: 1})
		}, ErrBusy, nil},
		{"take a job on a busy node", func(t *testing.T) [][]byte {
			other := running
			other.Source, other.Node = "vc", "n1"
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{other}), mustCmd(t, PutJobCommand, putJobBody{queued})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute), PerSource: 1, PerNode: 1})
		}, ErrBusy, nil},
		{"take a job twice", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n2", Now: now, Until: now.Add(time.Minute)})
		}, ErrConflict, nil},
		{"renew a lease", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)}),
				mustCmd(t, CancelJobCommand, cancelJobBody{ID: queued.ID, Now: now})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RenewLeaseCommand, renewLeaseBody{ID: queued.ID, Node: "n1", Until: now.Add(2 * time.Minute)})
		}, nil, func(t *testing.T, s *state, res Result) {
			if j := res.Jobs[0]; !j.Lease.Equal(now.Add(2*time.Minute)) || !j.CancelRequested || j.State != JobRunning {
				t.Errorf("renewed job = %+v", j)
			}
		}},
		{"renew a lease of another node", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, RenewLeaseCommand, renewLeaseBody{ID: queued.ID, Node: "n2", Until: now.Add(2 * time.Minute)})
		}, ErrConflict, nil},
		{"cancel a queued job", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, CancelJobCommand, cancelJobBody{ID: queued.ID, Now: now})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if j := s.jobs[queued.ID]; j.State != JobCanceled || len(s.active) != 0 {
				t.Errorf("job = %+v, active %v", j, s.active)
			}
		}},
		{"cancel a finished job", func(t *testing.T) [][]byte {
			done := queued
			done.State = JobSucceeded
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{done})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, CancelJobCommand, cancelJobBody{ID: queued.ID, Now: now})
		}, ErrConflict, nil},
		{"expire leases", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{running}), mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)})}
		}, func(t *testing.T) []byte {
			return mustCmd(t, ExpireLeasesCommand, expireLeasesBody{Now: now.Add(2 * time.Minute)})
		}, nil, func(t *testing.T, s *state, res Result) {
			if len(res.Jobs) != 1 || res.Jobs[0].ID != queued.ID || s.jobs[queued.ID].State != JobInterrupted {
				t.Errorf("expired %+v", res.Jobs)
			}
			if s.jobs[running.ID].State != JobRunning {
				t.Error("a job without a lease was interrupted")
			}
		}},
		{"finish a job running on its node", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)})}
		}, func(t *testing.T) []byte {
			done := queued
			done.State, done.Node = JobSucceeded, "n1"
			return mustCmd(t, FinishJobCommand, putJobBody{done})
		}, nil, func(t *testing.T, s *state, _ Result) {
			if j := s.jobs[queued.ID]; j.State != JobSucceeded || len(s.active) != 0 {
				t.Errorf("job = %+v", j)
			}
		}},
		{"finish a job the cluster interrupted", func(t *testing.T) [][]byte {
			return [][]byte{mustCmd(t, PutJobCommand, putJobBody{queued}),
				mustCmd(t, TakeJobCommand, takeJobBody{ID: queued.ID, Node: "n1", Now: now, Until: now.Add(time.Minute)}),
				mustCmd(t, ExpireLeasesCommand, expireLeasesBody{Now: now.Add(time.Hour)})}
		}, func(t *testing.T) []byte {
			done := queued
			done.State, done.Node = JobFailed, "n1"
			return mustCmd(t, FinishJobCommand, putJobBody{done})
		}, ErrConflict, nil},
		{"a job that is no longer running commits no restore point", func(t *testing.T) [][]byte {
			gone := running
			gone.State = JobInterrupted
			return [][]byte{mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")}), mustCmd(t, PutJobCommand, putJobBody{gone})}
		}, func(t *testing.T) []byte {
			rp := testPoint("rp-1", "nas", "vm1", t0)
			rp.Job = running.ID
			return mustCmd(t, CommitRestorePointCommand, commitBody{rp})
		}, ErrConflict, nil},
		{"end a gc round that is not running", nil, func(t *testing.T) []byte {
			return mustCmd(t, EndGCCommand, endGCBody{GCRound{Epoch: 1, State: GCDone}})
		}, ErrConflict, nil},
	}
	covered := map[CommandType]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFSM()
			if tt.setup != nil {
				mustApply(t, f, tt.setup(t)...)
			}
			cmd := tt.cmd(t)
			covered[CommandType(cmd[0])] = true
			before := persisted(t, f)
			res := f.Apply(cmd)
			if !errors.Is(res.Err, tt.want) || (tt.want == nil) != (res.Err == nil) {
				t.Fatalf("Apply = %v, want %v", res.Err, tt.want)
			}
			if res.Err != nil && !bytes.Equal(persisted(t, f), before) {
				t.Error("a refused command changed the state")
			}
			if tt.check != nil {
				tt.check(t, view(f), res)
			}
		})
	}
	for ct := AddSourceCommand; ct <= FinishJobCommand; ct++ {
		if !covered[ct] {
			t.Errorf("command type %d has no test", ct)
		}
	}
}

func TestApplyUnknownAndBad(t *testing.T) {
	ok := mustCmd(t, AddSourceCommand, addSourceBody{testSource("nas")})
	tests := []struct {
		name    string
		entry   []byte
		panics  bool
		ignored bool
	}{
		{"unknown type", []byte{0x7f, recordV1, '{', '}'}, true, false},
		{"unknown optional type", []byte{0x80 | 0x7f, recordV1, '{', '}'}, false, true},
		{"unknown optional type with a body of a newer version", []byte{0x80 | 0x70, 9, 0xff}, false, true},
		{"known type marked optional applies", append([]byte{byte(IgnoreUnknown | AddSourceCommand)}, ok[1:]...), false, false},
		{"empty entry", nil, true, false},
		{"no body", []byte{byte(AddSourceCommand)}, true, false},
		{"body of a newer version", append([]byte{byte(AddSourceCommand), 2}, ok[2:]...), true, false},
		{"body not JSON", []byte{byte(AddSourceCommand), recordV1, 'x'}, true, false},
		{"body of the wrong shape", []byte{byte(AddSourceCommand), recordV1, '[', ']'}, true, false},
		{"type zero", []byte{0, recordV1, '{', '}'}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFSM()
			mustApply(t, f, mustCmd(t, SetNodeCommand, setNodeBody{testNode("n1")}))
			before := persisted(t, f)
			var res Result
			r := func() (r any) {
				defer func() { r = recover() }()
				res = f.Apply(tt.entry)
				return nil
			}()
			if (r != nil) != tt.panics {
				t.Fatalf("panic = %v, want panic %v", r, tt.panics)
			}
			if r != nil {
				if err, isErr := r.(error); !isErr || !errors.Is(err, ErrBadCommand) {
					t.Errorf("panicked with %v, want an error wrapping ErrBadCommand", r)
				}
				return
			}
			if res.Ignored != tt.ignored {
				t.Errorf("Ignored = %v, want %v", res.Ignored, tt.ignored)
			}
			if changed := !bytes.Equal(persisted(t, f), before); changed == tt.ignored {
				t.Errorf("state changed = %v for a command ignored = %v", changed, tt.ignored)
			}
		})
	}
}

// testLog is a log touching every command type, refusals included.
func testLog(t testing.TB) [][]byte {
	var log [][]byte
	add := func(ct CommandType, body any) { log = append(log, mustCmd(t, ct, body)) }
	add(SetNodeCommand, setNodeBody{testNode("n1")})
	add(SetNodeCommand, setNodeBody{testNode("n2")})
	add(AddSourceCommand, addSourceBody{testSource("nas")})
	add(AddSourceCommand, addSourceBody{testSource("nas")}) // refused
	add(AddSourceCommand, addSourceBody{testSource("vc")})
	add(PutKeyCommand, putKeyBody{testKey("acme", 1)})
	for i := range 5 {
		rp := testPoint(fmt.Sprintf("rp-%d", i), "nas", "vm-1", t0.Add(time.Duration(i)*time.Hour))
		if i > 0 {
			rp.Base = fmt.Sprintf("rp-%d", i-1)
		}
		add(CommitRestorePointCommand, commitBody{rp})
		add(PutJobCommand, putJobBody{Job{ID: fmt.Sprintf("job-%d", i), Kind: JobBackup, State: JobRunning, Source: "nas", Created: t0.Add(time.Duration(i) * time.Minute)}})
	}
	add(SetVerifyCommand, setVerifyBody{"rp-4", VerifyState{State: VerifyFailed, At: t0.Add(9 * time.Hour), Error: "corrupt"}})
	add(PutJobCommand, putJobBody{Job{ID: "job-0", Kind: JobBackup, State: JobSucceeded, Source: "nas", Created: t0, RestorePoint: "rp-0", Verify: &VerifyResult{OK: true, Errors: []string{"none"}}}})
	add(InterruptRunningCommand, interruptBody{Now: t0.Add(10 * time.Hour)})
	add(RemoveSourceCommand, removeSourceBody{"nas"}) // refused: restore points
	add(RemoveSourceCommand, removeSourceBody{"vc"})
	add(RemoveNodeCommand, removeNodeBody{"n2"})
	add(PutJoinTokenCommand, putTokenBody{testToken(1)})
	add(PutJoinTokenCommand, putTokenBody{testToken(2)})
	add(RedeemJoinTokenCommand, redeemTokenBody{testToken(2).Hash, "n3", t0})
	add(BeginGCCommand, beginGCBody{GCRound{Job: "job-gc", Started: t0, Cutoff: t0}})
	add(PutPolicyCommand, putPolicyBody{testPolicy("gold")})
	add(PutRunCommand, putRunBody{testRun(t0, RunClaimed), true})
	add(EndGCCommand, endGCBody{GCRound{Epoch: 1, State: GCDone, Finished: t0.Add(time.Minute), BytesReclaimed: 7}})
	log = append(log, []byte{byte(IgnoreUnknown | 0x7e), recordV1, '{', '}'})
	return log
}

func TestApplyDeterministic(t *testing.T) {
	log := testLog(t)
	a, b := NewFSM(), NewFSM()
	for i, e := range log {
		ra, rb := a.Apply(e), b.Apply(e)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("entry %d: results differ: %+v / %+v", i, ra, rb)
		}
	}
	pa, pb := persisted(t, a), persisted(t, b)
	if !bytes.Equal(pa, pb) {
		t.Fatal("two FSMs fed the same log differ")
	}

	// A replica that joins from a snapshot taken halfway ends the same.
	half := NewFSM()
	for _, e := range log[:len(log)/2] {
		half.Apply(e)
	}
	c := NewFSM()
	if err := c.Restore(bytes.NewReader(persisted(t, half))); err != nil {
		t.Fatal(err)
	}
	for _, e := range log[len(log)/2:] {
		c.Apply(e)
	}
	if !bytes.Equal(persisted(t, c), pa) {
		t.Error("a replica restored from a snapshot and fed the rest of the log differs")
	}
}
