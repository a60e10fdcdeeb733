// Package vcsimtest runs govmomi's vCenter simulator (the VPX model)
// in-process over real SOAP/HTTPS on 127.0.0.1, with what the simulator lacks
// for backup testing:
//
//   - VMs whose disks' flat files hold real bytes (Ext4Image builds a real
//     ext4 filesystem with mkfs.ext4 -d);
//   - changed-block tracking: snapshots are stamped with VMware-style
//     changeIds ("52 xx .. xx/N") and QueryChangedDiskAreas answers from the
//     guest writes made through Sim.Write since each changeId;
//   - snapshots that are point in time: while a VM has a snapshot, guest
//     writes go to a redo log that is merged into the flat file when the last
//     snapshot is removed, as ESXi's delta disks are;
//   - an authenticating /folder: datastore reads need a live session cookie;
//   - faults: simulator fault rules, QueryChangedDiskAreas failing after N
//     calls, partial coverage per call, changeId reset, session expiry, and
//     read errors on datastore GETs.
//
// It is not a _test package because cairnd --demo embeds it.
package vcsimtest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	// The vAPI endpoints (tags) of the simulator; registered through
	// simulator.Service.RegisterEndpoints.
	_ "github.com/vmware/govmomi/vapi/simulator"
)

// Datacenter and Datastore name the inventory the VPX model builds.
const (
	Datacenter = "DC0"
	Datastore  = "LocalDS_0"
)

// Options describe the simulated vCenter.
type Options struct {
	// User and Password are the only credentials the simulator accepts;
	// empty means "cairn" and "vcsim-password".
	User, Password string
	// Dir holds the datastores; empty means a temporary directory that
	// Close removes.
	Dir string
	// VMs are created at start, in order.
	VMs []VM
	// Listen is the simulator's address; empty means 127.0.0.1 on a free
	// port.
	Listen string
	// OnSnapshot, if set, is called when a snapshot freezes a disk, with
	// the VM's name, the disk's index, the changeId stamped (empty without
	// CBT) and the flat file, which stays frozen until the snapshot goes.
	OnSnapshot func(vm string, disk int, changeID, flat string)
}

// VM is a virtual machine to create.
type VM struct {
	Name       string
	Disks      []Disk
	MemoryMB   int32
	CPUs       int32
	PoweredOff bool     // the default is powered on, with VMware Tools running
	Tags       []string // vSphere tags in category "cairn-test"
}

// Disk is a virtual disk of a VM.
type Disk struct {
	Capacity int64  // bytes, a multiple of 1 KiB
	Image    string // a raw image copied (sparsely) into the flat file; "" for zeros
}

// Sim is a running simulated vCenter.
type Sim struct {
	URL            *url.URL // https://127.0.0.1:PORT/sdk without credentials
	User, Password string
	Thumbprint     string // SHA-1 of the certificate, colon-separated hex, as vCenter shows it
	Thumbprint256  string // SHA-256, colon-separated hex
	CAFile         string // PEM file of the server certificate

	listen     string
	onSnapshot func(vm string, disk int, changeID, flat string)

	model  *simulator.Model
	server *simulator.Server
	dir    string
	ownDir bool

	mu        sync.Mutex
	disks     map[diskID]*disk
	vmDisks   map[string][]diskID // VM name → its disks in order
	snaps     map[string][]diskID // snapshot moref → disks it froze
	sessions  map[string]bool     // session key → expired
	shadows   map[string]int      // session+VM → QueryChangedDiskAreas calls under way
	faults    faultState
	closeOnce sync.Once
}

// tmpdirMu serialises the TMPDIR switch around Model.Create.
var tmpdirMu sync.Mutex

// ErrNoMkfs is returned by Ext4Image when mkfs.ext4 is not installed.
var ErrNoMkfs = errors.New("mkfs.ext4 not found (install e2fsprogs)")

// Start runs a simulated vCenter and creates opts.VMs. Close stops it.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	s := &Sim{
		User: opts.User, Password: opts.Password, dir: opts.Dir, listen: opts.Listen, onSnapshot: opts.OnSnapshot,
		disks: map[diskID]*disk{}, vmDisks: map[string][]diskID{},
		snaps: map[string][]diskID{}, sessions: map[string]bool{}, shadows: map[string]int{}, faults: faultState{queryFailAfter: -1, expireAfter: -1},
	}
	if s.User == "" {
		s.User = "cairn"
	}
	if s.Password == "" {
		s.Password = "vcsim-password"
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "cairn-vcsim-")
		if err != nil {
			return nil, fmt.Errorf("start simulator: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	for _, vm := range opts.VMs {
		if err := s.CreateVM(ctx, vm); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Sim) start() error {
	m := simulator.VPX()
	m.Machine = 0 // only the VMs asked for
	m.Autostart = false
	// The model keeps its datastores under $TMPDIR; there is no other knob.
	// Our own Starts take turns changing it.
	tmpdirMu.Lock()
	defer tmpdirMu.Unlock()
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", s.dir)
	err := m.Create()
	if had {
		os.Setenv("TMPDIR", old)
	} else {
		os.Unsetenv("TMPDIR")
	}
	if err != nil {
		return fmt.Errorf("create simulator model: %w", err)
	}
	s.model = m
	svc := m.Service
	svc.RegisterEndpoints = true
	svc.TLS = new(tls.Config)
	host := s.listen
	if host == "" {
		host = "127.0.0.1:0"
	}
	svc.Listen = &url.URL{Host: host, User: url.UserPassword(s.User, s.Password)}
	m.Map().AddHandler(&hook{s: s})
	m.Map().Handler = s.handler
	if svc.ServeMux == nil {
		svc.ServeMux = http.NewServeMux()
	}
	// More specific than the simulator's own "/folder/", so these win.
	svc.ServeMux.HandleFunc("GET /folder/", s.serveFolderRead)
	svc.ServeMux.HandleFunc("PUT /folder/", s.serveFolderWrite)
	s.server = svc.NewServer()

	u := *s.server.URL
	u.User = nil
	s.URL = &u
	cert := s.server.Certificate()
	info := s.server.CertificateInfo()
	s.Thumbprint = info.ThumbprintSHA1
	sum := sha256.Sum256(cert.Raw)
	s.Thumbprint256 = colonHex(sum[:])
	ca, err := s.server.CertificateFile()
	if err != nil {
		return fmt.Errorf("simulator certificate: %w", err)
	}
	s.CAFile = ca
	return nil
}

// Close stops the simulator and removes its files when Start made the
// directory.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		if s.server != nil {
			s.server.Close()
		}
		s.mu.Lock()
		for _, d := range s.disks {
			d.closeRedo()
		}
		s.mu.Unlock()
		if s.model != nil {
			s.model.Remove()
		}
		if s.ownDir {
			os.RemoveAll(s.dir)
		}
	})
}

// Client logs in to the simulator as s.User, pinning its certificate.
func (s *Sim) Client(ctx context.Context) (*govmomi.Client, error) {
	sc := soap.NewClient(s.URL, false)
	if err := sc.SetRootCAs(s.CAFile); err != nil {
		return nil, err
	}
	c, err := newClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx, url.UserPassword(s.User, s.Password)); err != nil {
		return nil, fmt.Errorf("log in to the simulator: %w", err)
	}
	return c, nil
}

// Service is the simulator's service, for fault rules and delays.
func (s *Sim) Service() *simulator.Service { return s.model.Service }

// Model is the simulator's model (its Map, DelayConfig).
func (s *Sim) Model() *simulator.Model { return s.model }

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// unauthorized answers a datastore request without a live session.
func unauthorized(w http.ResponseWriter) {
	http.Error(w, "a live vmware_soap_session cookie is required", http.StatusUnauthorized)
}

func newClient(ctx context.Context, sc *soap.Client) (*govmomi.Client, error) {
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to the simulator: %w", err)
	}
	return &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}, nil
}
