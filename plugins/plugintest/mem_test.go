package plugintest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

// memDisk is an in-memory system with one disk that records every write,
// so its source can report deltas like native change tracking. bug names a
// contract violation to commit, for checking that the suite notices.
type memDisk struct {
	bug string

	mu     sync.Mutex
	data   []byte
	writes []write // every write, in order; a token is an index into it
	open   int     // snapshots not yet closed
}

func (m *memDisk) write(off int64, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[off:], p)
	m.writes = append(m.writes, write{off, bytes.Clone(p)})
	return nil
}

func (m *memDisk) leftovers() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open > 0 {
		return []string{fmt.Sprintf("%d open snapshots", m.open)}, nil
	}
	return nil, nil
}

func (m *memDisk) Objects(ctx context.Context) ([]plugins.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return []plugins.Object{{Name: "vm", Kind: "vm", Size: int64(len(m.data)), Disks: 1}}, nil
}

func (m *memDisk) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if object != "vm" && m.bug != "open-unknown" {
		return nil, plugins.ErrNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open++
	view := bytes.Clone(m.data)
	if m.bug == "live" {
		view = m.data
	}
	return &memSnap{m: m, d: &memView{m: m, data: view, gen: len(m.writes)}}, nil
}

type memSnap struct {
	m      *memDisk
	d      *memView
	closed bool
}

func (s *memSnap) Disks() []plugins.Disk { return []plugins.Disk{s.d} }
func (s *memSnap) Consistency() string   { return "crash-consistent" }

func (s *memSnap) Close(ctx context.Context) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.closed {
		if s.m.bug == "close-twice" {
			return fmt.Errorf("already closed")
		}
		return nil
	}
	s.closed = true
	if s.m.bug != "leak" {
		s.m.open--
	}
	return nil
}

type memView struct {
	m    *memDisk
	data []byte
	gen  int
}

func (d *memView) Key() string     { return "disk0" }
func (d *memView) Capacity() int64 { return int64(len(d.data)) }

func (d *memView) ReadAt(p []byte, off int64) (int, error) {
	if d.m.bug == "live" {
		d.m.mu.Lock()
		defer d.m.mu.Unlock()
	}
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if d.m.bug == "short-read" && n > 4096 {
		return n - 1, nil
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memView) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	token := strconv.Itoa(d.gen)
	if base == nil {
		var ext []plugins.Extent
		for off := 0; off < len(d.data); off += 4096 {
			b := d.data[off:min(off+4096, len(d.data))]
			if bytes.Count(b, []byte{0}) != len(b) {
				ext = append(ext, plugins.Extent{Offset: int64(off), Length: int64(len(b))})
			}
		}
		ext, _ = plugins.NormalizeExtents(ext, d.Capacity())
		switch d.m.bug {
		case "drop-extent":
			ext = ext[:len(ext)-1]
		case "overlap":
			ext = append(ext, ext[len(ext)-1])
		}
		return &plugins.Changes{Extents: ext, Method: "allocated", Token: token}, nil
	}
	from, err := strconv.Atoi(base.ChangeToken)
	if err != nil {
		return nil, err
	}
	d.m.mu.Lock()
	ws := d.m.writes[from:d.gen]
	d.m.mu.Unlock()
	var ext []plugins.Extent
	for i, w := range ws {
		if i == 0 && d.m.bug == "delta-miss" {
			continue
		}
		ext = append(ext, w.extent())
	}
	ext, _ = plugins.NormalizeExtents(ext, d.Capacity())
	return &plugins.Changes{Extents: ext, Delta: d.m.bug != "no-delta", Method: "cbt", Token: token}, nil
}

// memPlace is an in-memory place to restore one disk into.
type memPlace struct {
	bug       string
	overwrite bool

	mu      sync.Mutex
	disk    []byte // nil: no disk
	partial []byte // a restore in progress
}

func (p *memPlace) read() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disk == nil {
		return nil, fs.ErrNotExist
	}
	return bytes.Clone(p.disk), nil
}

func (p *memPlace) leftovers() ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partial != nil {
		return []string{"partial disk"}, nil
	}
	return nil, nil
}

func (p *memPlace) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disk != nil && !p.overwrite && p.bug != "no-exists" {
		return nil, plugins.ErrExists
	}
	switch p.bug {
	case "no-zero":
		if p.disk != nil {
			p.partial = bytes.Clone(p.disk)
			break
		}
		fallthrough
	default:
		p.partial = make([]byte, spec.Capacity)
	}
	if p.bug == "visible-early" {
		p.disk = p.partial
	}
	return &memWriter{p: p, capacity: spec.Capacity}, nil
}

type memWriter struct {
	p        *memPlace
	capacity int64
	done     string
}

func (w *memWriter) WriteAt(b []byte, off int64) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if off < 0 || off+int64(len(b)) > w.capacity {
		if w.p.bug != "out-of-range" || off < 0 {
			return 0, fmt.Errorf("out of range")
		}
		return len(b), nil
	}
	return copy(w.p.partial[off:], b), nil
}

func (w *memWriter) Commit(ctx context.Context) error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.done == "abort" {
		return fmt.Errorf("aborted")
	}
	if w.done == "" {
		w.p.disk, w.p.partial, w.done = w.p.partial, nil, "commit"
	}
	return nil
}

func (w *memWriter) Abort(ctx context.Context) error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.done == "" {
		w.done = "abort"
		if w.p.bug != "abort-leak" {
			w.p.partial = nil
		}
		if w.p.bug == "visible-early" {
			w.p.disk = nil
		}
	}
	return nil
}

func memSourceHarness(bug string) SourceHarness {
	return SourceHarness{
		Delta: true,
		New: func(t *testing.T, content []byte) SourceFixture {
			m := &memDisk{bug: bug, data: bytes.Clone(content)}
			return SourceFixture{Source: m, Object: "vm", Write: m.write, Leftovers: m.leftovers}
		},
	}
}

func memTargetHarness(bug string) TargetHarness {
	return TargetHarness{
		New: func(t *testing.T, existing, overwrite bool) TargetFixture {
			p := &memPlace{bug: bug, overwrite: overwrite}
			if existing {
				p.disk = bytes.Repeat([]byte{0x5a}, DefaultCapacity)
			}
			return TargetFixture{Target: p, Read: p.read, Leftovers: p.leftovers}
		},
	}
}
