package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ErrLocked is returned by Open when another process holds the directory.
var ErrLocked = errors.New("store directory is locked")

// DefaultMaxSegmentSize is the size at which a writer seals its segment and
// starts a new one, unless Options say otherwise.
const DefaultMaxSegmentSize = 256 << 20

// Options configure a store. The zero value is ready to use.
type Options struct {
	// MaxSegmentSize is the size past which no record is appended to a
	// segment; a record larger than that gets a segment of its own.
	// Zero means DefaultMaxSegmentSize. Memory ignores it.
	MaxSegmentSize int64
	// Writers is how many segments are appended to at once, each by its
	// own group-commit goroutine. Zero means GOMAXPROCS, at most 4.
	// Memory ignores it.
	Writers int
	// Now is the clock for last-reference times; nil means time.Now.
	Now func() time.Time
	// NoSync skips every fsync, giving up durability. For tests only.
	NoSync bool
}

func (o Options) withDefaults() Options {
	if o.MaxSegmentSize <= 0 {
		o.MaxSegmentSize = DefaultMaxSegmentSize
	}
	if o.Writers <= 0 {
		o.Writers = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Local is the node's on-disk chunk store: append-only segment files under
// dir/segments and a bbolt index in dir/index.db, guarded by a lock on
// dir/LOCK. Puts are written by writer goroutines that batch concurrent
// callers into one append, one fsync and one index transaction.
type Local struct {
	dir    string
	segDir string
	opts   Options
	lock   *os.File
	db     *bolt.DB
	gate   gate

	reqs    chan *request
	writers []*writer
	writing sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	segs    map[uint64]*segInfo
	open    map[uint64]bool // segments writers append to; compaction keeps off
	nextSeg uint64
	failed  error // a failed append leaves the store read-only until reopened

	compactMu sync.Mutex
}

var _ Store = (*Local)(nil)

// segInfo is what the store keeps in memory about one segment.
type segInfo struct {
	size    int64 // file bytes
	live    segStat
	missing bool // the index counts chunks in it but the file is gone
}

// Open opens or creates the store in dir. It takes the directory's lock,
// cuts off a torn tail left by a crash, indexes complete records that were
// appended but never indexed, and rebuilds the index from the segments if
// index.db is missing.
func Open(dir string, opts Options) (*Local, error) {
	s := &Local{
		dir:    dir,
		segDir: filepath.Join(dir, "segments"),
		opts:   opts.withDefaults(),
		reqs:   make(chan *request, maxBatch),
		segs:   map[uint64]*segInfo{},
		open:   map[uint64]bool{},
	}
	for range s.opts.Writers {
		s.writers = append(s.writers, &writer{s: s, ctl: make(chan *request)})
	}
	s.gate.init()
	if err := os.MkdirAll(s.segDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s.lock = lock
	s.db, err = bolt.Open(filepath.Join(dir, "index.db"), 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoSync:         s.opts.NoSync,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		unlock(lock)
		return nil, fmt.Errorf("open store %s: index: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		for _, w := range s.writers {
			if w.act != nil {
				w.act.f.Close()
			}
		}
		s.db.Close()
		unlock(lock)
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s.writing.Add(len(s.writers))
	for _, w := range s.writers {
		go w.run()
	}
	return s, nil
}

// Close waits for calls in progress, stops the writers and releases the
// directory. Later calls return ErrClosed.
func (s *Local) Close() error {
	if !s.gate.close() {
		return ErrClosed
	}
	close(s.reqs)
	for _, w := range s.writers {
		close(w.ctl)
	}
	s.writing.Wait()
	var errs []error
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := unlock(s.lock); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return nil
}

// Stats describes a store's contents.
type Stats struct {
	Chunks       int64 // chunks in the index
	LiveBytes    int64 // their sealed bytes
	SegmentBytes int64 // bytes in segment files, live or not
	Segments     int   // segment files
}

// Stats reports the store's size from memory; it does no I/O.
func (s *Local) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	for _, si := range s.segs {
		st.Chunks += si.live.count
		st.LiveBytes += si.live.sealed
		if !si.missing {
			st.SegmentBytes += si.size
			st.Segments++
		}
	}
	return st
}

// applyDelta folds committed live-count changes into memory.
func (s *Local) applyDelta(delta map[uint64]segStat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, d := range delta {
		si := s.segs[n]
		if si == nil {
			si = &segInfo{missing: true}
			s.segs[n] = si
		}
		si.live = si.live.add(d)
	}
}

// openSegment numbers a new segment and keeps compaction off it.
func (s *Local) openSegment() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextSeg
	s.nextSeg++
	s.open[n] = true
	s.segs[n] = &segInfo{}
	return n
}

// closeSegments hands sealed, fully indexed segments over to compaction.
func (s *Local) closeSegments(nums []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nums {
		delete(s.open, n)
	}
}

func (s *Local) setSize(n uint64, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if si := s.segs[n]; si != nil {
		si.size = size
	}
}

// hasDead reports whether segment n holds bytes no index entry points at.
func (s *Local) hasDead(n uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	si := s.segs[n]
	return si != nil && si.size-segHeaderSize > si.live.recordBytes()
}

func (s *Local) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// fail makes the store refuse writes until it is reopened and returns the
// error to give callers.
func (s *Local) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("store is read-only until reopened: %w", err)
	}
	return s.failed
}

// lockDir takes an exclusive flock on dir/LOCK and records our pid in it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		var pid [32]byte
		n, _ := f.ReadAt(pid[:], 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("held by pid %s: %w", strings.TrimSpace(string(pid[:n])), ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	}
	return f, nil
}

func unlock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return errors.Join(err, f.Close())
}

// gate lets calls in while the store is open and lets Close wait for the
// ones in progress. Unlike an RWMutex it allows a call to re-enter (a Walk
// callback calling Get) while Close waits.
type gate struct {
	mu     sync.Mutex
	idle   *sync.Cond
	n      int
	closed bool
}

func (g *gate) init() { g.idle = sync.NewCond(&g.mu) }

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		g.idle.Broadcast()
	}
}

// close shuts the gate and waits for calls inside to leave; false if it was
// already shut.
func (g *gate) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	for g.n > 0 {
		g.idle.Wait()
	}
	return true
}

// closing reports whether Close has begun, so long calls can stop early.
func (g *gate) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
