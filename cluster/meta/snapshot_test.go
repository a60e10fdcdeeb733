package meta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// recordTypes lists the record types of a snapshot stream, in order.
func recordTypes(t *testing.T, b []byte) []recordType {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b[len(snapshotMagic)+1:]))
	var out []recordType
	for {
		ty, err := r.ReadByte()
		if err != nil {
			t.Fatalf("stream ends without an end record: %v", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recordType(ty))
		if recordType(ty) == recordEnd {
			return out
		}
		if _, err := r.Discard(int(n)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := NewFSM()
	log := testLog(t)
	for _, e := range log {
		f.Apply(e)
	}
	// A base newer than what builds on it must still restore.
	mustApply(t, f,
		mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-late", "nas", "vm-2", t0.Add(100*time.Hour))}),
		mustCmd(t, CommitRestorePointCommand, commitBody{RestorePoint{ID: "rp-early", Source: "nas", Object: "vm-2", Time: t0, Base: "rp-late"}}),
		mustCmd(t, PutJobCommand, putJobBody{Job{ID: "job-q", Kind: JobVerify, State: JobQueued, Created: t0}}),
	)
	b := persisted(t, f)

	seen := map[recordType]bool{}
	for _, ty := range recordTypes(t, b) {
		seen[ty] = true
	}
	for ty := recordEnd; ty <= recordEpoch; ty++ {
		if !seen[ty] {
			t.Errorf("snapshot holds no record of type %d", ty)
		}
	}

	g := NewFSM()
	mustApply(t, g, mustCmd(t, AddSourceCommand, addSourceBody{testSource("replaced")}))
	if err := g.Restore(iotest.OneByteReader(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if again := persisted(t, g); !bytes.Equal(again, b) {
		t.Error("persist after restore differs from the snapshot restored")
	}
	want, got := view(f), view(g)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored state differs:\n got %+v\nwant %+v", got, want)
	}
	if _, ok := got.source("replaced"); ok {
		t.Error("restore kept state from before")
	}
	// The indexes work after a restore, not just the records.
	if rp, ok := got.latest("nas", "vm-2"); !ok || rp.ID != "rp-late" {
		t.Errorf("latest after restore = %s, %v; want rp-late", rp.ID, ok)
	}
	if err := got.removeSource("nas"); !errors.Is(err, ErrConflict) {
		t.Errorf("remove source with restore points after restore = %v", err)
	}
	if jobs := got.interrupt("", t0); len(jobs) != 1 || jobs[0].ID != "job-q" {
		t.Errorf("active jobs after restore = %+v; want job-q", jobs)
	}
}

func TestSnapshotIsImmutable(t *testing.T) {
	f := NewFSM()
	for _, e := range testLog(t) {
		f.Apply(e)
	}
	before := persisted(t, f)
	s := f.Snapshot()
	mustApply(t, f,
		mustCmd(t, AddSourceCommand, addSourceBody{testSource("later")}),
		mustCmd(t, CommitRestorePointCommand, commitBody{testPoint("rp-9", "nas", "vm-1", t0.Add(-time.Hour))}),
		mustCmd(t, SetVerifyCommand, setVerifyBody{"rp-1", VerifyState{State: VerifyOK, At: t0}}),
		mustCmd(t, PutJobCommand, putJobBody{Job{ID: "job-9", Kind: JobBackup, State: JobRunning, Created: t0}}),
		mustCmd(t, SetNodeCommand, setNodeBody{testNode("n3")}),
	)
	var buf bytes.Buffer
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	s.Release()
	if !bytes.Equal(buf.Bytes(), before) {
		t.Error("commands applied after Snapshot changed what it persists")
	}
}

// streamWith returns a snapshot stream of the given records.
func streamWith(t *testing.T, recs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	buf.WriteByte(snapshotVersion)
	for i := 0; i < len(recs); i += 2 {
		b, err := encode(recs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteByte(byte(recs[i].(recordType)))
		buf.Write(binary.AppendUvarint(nil, uint64(len(b))))
		buf.Write(b)
	}
	buf.Write([]byte{0, 0})
	return buf.Bytes()
}

func TestRestoreRefuses(t *testing.T) {
	good := streamWith(t, recordSource, testSource("nas"))
	rp := testPoint("rp-1", "nas", "vm-1", t0)
	based := testPoint("rp-2", "nas", "vm-1", t0)
	based.Base = "rp-0"
	tests := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"empty", nil, "header"},
		{"not a snapshot", []byte("hello, world, this is not it"), "not a catalog snapshot"},
		{"newer format", append([]byte(snapshotMagic), 2, 0, 0), "format 2"},
		{"no end record", good[:len(good)-2], "unexpected EOF"},
		{"cut in a record", good[:len(good)-5], "unexpected EOF"},
		{"end record with a length", append(good[:len(good)-2:len(good)-2], 0, 1), "end record"},
		{"unknown record type", streamWith(t, recordType(99), struct{}{}), "unknown record type 99"},
		{"huge record", append([]byte(snapshotMagic+"\x01\x01"), binary.AppendUvarint(nil, maxRecord+1)...), "exceeds"},
		{"record of a newer version", append([]byte(snapshotMagic+"\x01\x01\x03\x02{}"), 0, 0), "record version 2"},
		{"duplicate source", streamWith(t, recordSource, testSource("nas"), recordSource, testSource("nas")), "already exists"},
		{"invalid source", streamWith(t, recordSource, Source{Name: "NAS"}), "invalid"},
		{"point of a missing source", streamWith(t, recordPoint, rp), "source nas"},
		{"point twice", streamWith(t, recordSource, testSource("nas"), recordPoint, rp, recordPoint, rp), "twice"},
		{"point without a tenant", streamWith(t, recordSource, testSource("nas"), recordPoint, RestorePoint{ID: "rp-1", Source: "nas", Object: "o", Time: t0, Verify: VerifyState{State: VerifyNone}}), "tenant"},
		{"missing base", streamWith(t, recordSource, testSource("nas"), recordPoint, based), "base rp-0"},
		{"job twice", streamWith(t, recordJob, Job{ID: "j", Kind: "backup", State: JobQueued, Created: t0}, recordJob, Job{ID: "j", Kind: "backup", State: JobQueued, Created: t0}), "twice"},
		{"key id twice", streamWith(t, recordKey, testKey("a", 1), recordKey, testKey("b", 1)), "key id"},
		{"node twice", streamWith(t, recordNode, testNode("n1"), recordNode, testNode("n1")), "twice"},
		{"invalid node", streamWith(t, recordNode, Node{ID: "n1"}), "address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFSM()
			mustApply(t, f, mustCmd(t, AddSourceCommand, addSourceBody{testSource("kept")}))
			before := persisted(t, f)
			err := f.Restore(bytes.NewReader(tt.stream))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.want)
			}
			if !bytes.Equal(persisted(t, f), before) {
				t.Error("a failed restore changed the state")
			}
		})
	}
	if err := NewFSM().Restore(bytes.NewReader(good)); err != nil {
		t.Errorf("the stream the cases damage does not restore: %v", err)
	}
}

func TestRestoreReadError(t *testing.T) {
	b := persisted(t, NewFSM())
	r := io.MultiReader(bytes.NewReader(b[:5]), iotest.ErrReader(errors.New("disk on fire")))
	if err := NewFSM().Restore(r); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Restore = %v, want the read error", err)
	}
}
