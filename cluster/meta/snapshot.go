package meta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// A snapshot stream is a header (snapshotMagic, then the format version
// byte) followed by records, each a record type byte, the body length as a
// uvarint and the body (a version byte and JSON, as in record.go), ending
// with a recordEnd whose length is zero. The end record lets Restore tell a
// complete stream from a truncated one.
const (
	snapshotMagic   = "cairn-meta-snapshot\n"
	snapshotVersion = 1

	// maxRecord bounds one record so a damaged length cannot make Restore
	// allocate without limit.
	maxRecord = 64 << 20
)

type recordType uint8

// Record types of the snapshot stream; only ever appended.
const (
	recordEnd    recordType = 0
	recordSource recordType = 1
	recordPoint  recordType = 2
	recordJob    recordType = 3
	recordKey    recordType = 4
	recordNode   recordType = 5
	recordEpoch  recordType = 6
	recordToken  recordType = 7
	recordGC     recordType = 8
	recordPolicy recordType = 9
)

type epochRecord struct {
	Epoch uint64 `json:"epoch"`
}

// Snapshot is an immutable view of an FSM's state, taken by FSM.Snapshot.
type Snapshot struct {
	st *state
}

// Snapshot captures the current state. It copies the maps under the lock,
// not the records, which are never changed in place; Persist may then run
// while commands apply.
func (f *FSM) Snapshot() *Snapshot {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &Snapshot{st: f.st.clone()}
}

// Release lets go of the view.
func (s *Snapshot) Release() { s.st = nil }

// Persist writes the snapshot stream to w. The same state always gives the
// same bytes: records go out sorted by key.
func (s *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(snapshotMagic)
	bw.WriteByte(snapshotVersion)
	st := s.st
	var err error
	put := func(t recordType, v any) {
		if err != nil {
			return
		}
		var b []byte
		if b, err = encode(v); err != nil {
			err = fmt.Errorf("record type %d: %w", t, err)
			return
		}
		bw.WriteByte(byte(t))
		bw.Write(binary.AppendUvarint(nil, uint64(len(b))))
		_, err = bw.Write(b)
	}
	put(recordEpoch, epochRecord{Epoch: st.epoch})
	for _, id := range slices.Sorted(maps.Keys(st.nodes)) {
		put(recordNode, st.nodes[id])
	}
	for _, name := range slices.Sorted(maps.Keys(st.sources)) {
		put(recordSource, st.sources[name])
	}
	points := slices.SortedFunc(maps.Values(st.points), comparePoints)
	for _, rp := range points {
		put(recordPoint, rp)
	}
	for _, id := range slices.Sorted(maps.Keys(st.jobs)) {
		put(recordJob, st.jobs[id])
	}
	for _, tenant := range slices.Sorted(maps.Keys(st.keys)) {
		put(recordKey, st.keys[tenant])
	}
	for _, hash := range slices.Sorted(maps.Keys(st.tokens)) {
		put(recordToken, st.tokens[hash])
	}
	if st.gc.Epoch > 0 {
		put(recordGC, st.gc)
	}
	for _, name := range slices.Sorted(maps.Keys(st.policies)) {
		put(recordPolicy, st.policies[name])
	}
	if err != nil {
		return fmt.Errorf("persist snapshot: %w", err)
	}
	bw.Write([]byte{byte(recordEnd), 0})
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return nil
}

// Restore replaces the FSM's state with the one r streams. On any error the
// FSM keeps its state. Each record must keep the rules Apply enforces (valid
// names, no duplicates, restore points of known sources).
func (f *FSM) Restore(r io.Reader) error {
	st, err := readSnapshot(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

func readSnapshot(r *bufio.Reader) (*state, error) {
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("not a catalog snapshot")
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("snapshot format %d not supported (want %d)", v, snapshotVersion)
	}
	st := newState()
	for n := 1; ; n++ {
		t, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, noEOF(err))
		}
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, fmt.Errorf("record %d: length: %w", n, noEOF(err))
		}
		if recordType(t) == recordEnd {
			if size != 0 {
				return nil, fmt.Errorf("record %d: end record of length %d", n, size)
			}
			return st, st.checkBases()
		}
		if size > maxRecord {
			return nil, fmt.Errorf("record %d: length %d exceeds %d", n, size, maxRecord)
		}
		// Read through a limit rather than into a buffer of the stated size,
		// so a damaged length costs no more memory than the data present.
		b, err := io.ReadAll(io.LimitReader(r, int64(size)))
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		if uint64(len(b)) != size {
			return nil, fmt.Errorf("record %d: %w", n, io.ErrUnexpectedEOF)
		}
		if err := st.restoreRecord(recordType(t), b); err != nil {
			return nil, fmt.Errorf("record %d (type %d): %w", n, t, err)
		}
	}
}

// noEOF turns a clean end of input into an unexpected one: a stream may only
// end after its end record.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// restoreRecord adds one record to st, holding it to the rules Apply holds
// commands to.
func (st *state) restoreRecord(t recordType, b []byte) error {
	switch t {
	case recordEpoch:
		var e epochRecord
		if err := decode(b, &e); err != nil {
			return err
		}
		st.epoch = e.Epoch
		return nil
	case recordNode:
		var n Node
		if err := decode(b, &n); err != nil {
			return err
		}
		if err := checkNode(n); err != nil {
			return err
		}
		if _, ok := st.nodes[n.ID]; ok {
			return fmt.Errorf("node %s twice: %w", n.ID, ErrExists)
		}
		st.nodes[n.ID] = n
		return nil
	case recordSource:
		var s Source
		if err := decode(b, &s); err != nil {
			return err
		}
		return st.addSource(s)
	case recordPoint:
		var rp RestorePoint
		if err := decode(b, &rp); err != nil {
			return err
		}
		return st.restorePoint(rp)
	case recordJob:
		var j Job
		if err := decode(b, &j); err != nil {
			return err
		}
		if _, ok := st.jobs[j.ID]; ok {
			return fmt.Errorf("job %s twice: %w", j.ID, ErrExists)
		}
		return st.putJob(j)
	case recordKey:
		var k WrappedKey
		if err := decode(b, &k); err != nil {
			return err
		}
		return st.putKey(k)
	case recordPolicy:
		var p Policy
		if err := decode(b, &p); err != nil {
			return err
		}
		if _, ok := st.policies[p.Name]; ok {
			return fmt.Errorf("policy %s twice: %w", p.Name, ErrExists)
		}
		return st.putPolicy(p)
	case recordGC:
		var r GCRound
		if err := decode(b, &r); err != nil {
			return err
		}
		if r.Epoch == 0 || st.gc.Epoch != 0 {
			return fmt.Errorf("gc round %d: %w", r.Epoch, ErrInvalid)
		}
		st.gc = r
		return nil
	case recordToken:
		var tk JoinToken
		if err := decode(b, &tk); err != nil {
			return err
		}
		if _, ok := st.tokens[tk.Hash]; ok {
			return fmt.Errorf("join token twice: %w", ErrExists)
		}
		if err := checkToken(tk); err != nil {
			return err
		}
		st.tokens[tk.Hash] = tk
		return nil
	}
	return fmt.Errorf("unknown record type %d: written by a newer version", t)
}

// restorePoint adds a restore point as commit would, except that its base
// may come later in the stream (checkBases looks once all are read).
func (st *state) restorePoint(rp RestorePoint) error {
	if err := checkPoint(rp); err != nil {
		return err
	}
	if _, ok := st.points[rp.ID]; ok {
		return fmt.Errorf("restore point %s twice: %w", rp.ID, ErrExists)
	}
	src, ok := st.sources[rp.Source]
	if !ok {
		return fmt.Errorf("restore point %s: source %s: %w", rp.ID, rp.Source, ErrNotFound)
	}
	if rp.Tenant != src.Tenant {
		return fmt.Errorf("restore point %s of tenant %q, source %s of tenant %s: %w", rp.ID, rp.Tenant, src.Name, src.Tenant, ErrConflict)
	}
	if rp.Verify.State == "" {
		return fmt.Errorf("restore point %s has no verify state: %w", rp.ID, ErrInvalid)
	}
	st.insertPoint(rp)
	return nil
}

// checkBases reports the first restore point, by ID, whose base is missing
// or of another tenant.
func (st *state) checkBases() error {
	for _, id := range slices.Sorted(maps.Keys(st.points)) {
		rp := st.points[id]
		if rp.Base == "" {
			continue
		}
		base, ok := st.points[rp.Base]
		if !ok {
			return fmt.Errorf("restore point %s: base %s: %w", id, rp.Base, ErrNotFound)
		}
		if base.Tenant != rp.Tenant {
			return fmt.Errorf("restore point %s: base %s belongs to tenant %s: %w", id, base.ID, base.Tenant, ErrConflict)
		}
	}
	return nil
}
