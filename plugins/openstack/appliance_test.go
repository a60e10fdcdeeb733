package openstack

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	appapi "github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/jobs"
	"github.com/cairnhq/cairn/appliance/jobs/jobstest"
	"github.com/cairnhq/cairn/appliance/keys"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/openstack/cindertest"
)

// appliance is the real job manager, backup and restore engines, catalog
// and an in-memory chunk store, with this plugin wired in.
type appliance struct {
	m       *jobs.Manager
	catalog *meta.Memory
	store   *gatedStore
}

// gatedStore holds every Put while closed, and says when the first Put
// arrived, so a test can act while a backup is mid-read.
type gatedStore struct {
	*store.Memory
	mu     sync.Mutex
	open   chan struct{}
	first  chan struct{}
	signal sync.Once
}

func (g *gatedStore) Put(ctx context.Context, id chunk.ID, sealed []byte) (bool, error) {
	g.signal.Do(func() { close(g.first) })
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return g.Memory.Put(ctx, id, sealed)
}

// hold closes the gate and resets the first-Put signal.
func (g *gatedStore) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
	g.first = make(chan struct{})
	g.signal = sync.Once{}
}

func (g *gatedStore) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func newAppliance(t *testing.T, timing Timing) *appliance {
	t.Helper()
	dir := t.TempDir()
	catalog := meta.NewMemory()
	master, _, err := keys.Load(filepath.Join(dir, "master.key"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Memory: store.NewMemory(store.Options{}), open: make(chan struct{}), first: make(chan struct{})}
	close(g.open)
	m, err := jobs.New(context.Background(), catalog, keys.NewRing(master, catalog, nil), g,
		[]plugins.Kind{KindWith(timing)}, jobs.Options{Secrets: keys.NewSecrets(master, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &appliance{m: m, catalog: catalog, store: g}
}

// addSource configures an openstack source named name reaching Cinder at
// endpoint without Keystone.
func (a *appliance) addSource(t *testing.T, name, endpoint string) {
	t.Helper()
	_, err := a.m.AddSource(context.Background(), appapi.AddSourceRequest{Name: name, Kind: Name, Config: map[string]string{
		SetNoAuth: "true", SetVolumeEndpoint: endpoint, SetProject: cindertest.Project, SetHost: applianceHost,
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func (a *appliance) wait(t *testing.T, j meta.Job, err error) meta.Job {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return jobstest.Wait(t, a.m, j.ID, 2*time.Minute)
}

// backup runs a backup of source/object and waits for it.
func (a *appliance) backup(t *testing.T, source, object string) meta.Job {
	t.Helper()
	j, err := a.m.StartBackup(context.Background(), appapi.BackupRequest{Source: source, Object: object})
	return a.wait(t, j, err)
}

// points lists the restore points of source/object.
func (a *appliance) points(t *testing.T, source, object string) []meta.RestorePoint {
	t.Helper()
	rps, err := a.m.RestorePoints(context.Background(), meta.Filter{Source: source, Object: object})
	if err != nil {
		t.Fatal(err)
	}
	return rps
}

// sameFiles fails unless the first n bytes of two files are equal.
func sameFiles(t *testing.T, a, b string, n int64) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	pa, pb := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); off < n; off += int64(len(pa)) {
		na, ea := io.ReadFull(io.NewSectionReader(fa, off, int64(len(pa))), pa)
		nb, eb := io.ReadFull(io.NewSectionReader(fb, off, int64(len(pb))), pb)
		if na != nb || !bytes.Equal(pa[:na], pb[:nb]) {
			t.Fatalf("%s and %s differ in the 4 MiB at %d (%v, %v)", a, b, off, ea, eb)
		}
	}
}

// proxy forwards TCP connections to a backend. While cut it drops every
// open connection and closes new ones at once, counting them, so a test
// knows the plugin tried the API while it was gone.
type proxy struct {
	backend, addr string
	mu            sync.Mutex
	isCut         bool
	conns         map[net.Conn]bool
	refused       chan struct{} // gets a value for each connection closed while cut
}

func newProxy(t *testing.T, backend string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{backend: backend, addr: l.Addr().String(), conns: map[net.Conn]bool{}, refused: make(chan struct{}, 1000)}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.isCut
			p.mu.Unlock()
			if cut {
				c.Close()
				select {
				case p.refused <- struct{}{}:
				default:
				}
				continue
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[b] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

// cut drops every open connection and refuses new ones: the API is gone.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore forwards new connections again.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = false
}

// waitRefused waits until the proxy has refused a connection since it was
// cut.
func (p *proxy) waitRefused(t *testing.T) {
	t.Helper()
	select {
	case <-p.refused:
	case <-time.After(time.Minute):
		t.Fatal("the plugin never called the API while it was cut off")
	}
}
