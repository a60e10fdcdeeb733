package vcsimtest

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// faultState is what the harness injects on top of simulator fault rules.
type faultState struct {
	queryCalls     int
	queryFailAfter int                      // QueryChangedDiskAreas calls that succeed before the rest fail; <0: none fail
	pageLimit      int64                    // bytes of the disk one QueryChangedDiskAreas reply covers; 0: to the end
	readFailures   int                      // datastore GETs of flat files still to fail
	expireAfter    int                      // QueryChangedDiskAreas calls after which every session expires; <0: never
	delays         map[string]time.Duration // by SOAP method name
	flatBytes      int64                    // bytes of flat files served by GETs
	flatGets       int
}

func sortExtents(ext []extent) {
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.off, b.off) })
}

// SetPageLimit makes each QueryChangedDiskAreas reply cover at most n bytes
// of the disk from its start offset (0: to the end), so callers must page.
func (s *Sim) SetPageLimit(n int64) {
	s.mu.Lock()
	s.faults.pageLimit = n
	s.mu.Unlock()
}

// FailQueryAfter lets n more QueryChangedDiskAreas calls succeed and fails
// every later one with a FileFault; n < 0 stops failing.
func (s *Sim) FailQueryAfter(n int) {
	s.mu.Lock()
	if n < 0 {
		s.faults.queryFailAfter = -1
	} else {
		s.faults.queryFailAfter = s.faults.queryCalls + n
	}
	s.mu.Unlock()
}

// ExpireSessionsAfterQueries lets n more QueryChangedDiskAreas calls
// succeed, then expires every session (as ExpireSessions) when the next
// one arrives, which fails NotAuthenticated; n < 0 turns it off.
func (s *Sim) ExpireSessionsAfterQueries(n int) {
	s.mu.Lock()
	if n < 0 {
		s.faults.expireAfter = -1
	} else {
		s.faults.expireAfter = s.faults.queryCalls + n
	}
	s.mu.Unlock()
}

// DelayMethod makes every call of the SOAP method (e.g.
// "CreateSnapshot_Task") wait d before it runs; 0 removes the delay. Unlike
// the simulator's DelayConfig it may change while calls are served.
func (s *Sim) DelayMethod(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.delays == nil {
		s.faults.delays = map[string]time.Duration{}
	}
	if d <= 0 {
		delete(s.faults.delays, method)
	} else {
		s.faults.delays[method] = d
	}
}

// LocalPath returns the file on this machine behind a datastore path
// "[datastore] dir/file", for tests that check what was written.
func (s *Sim) LocalPath(dsPath string) (string, error) { return s.localPath(dsPath) }

// QueryCalls counts the QueryChangedDiskAreas calls answered or failed.
func (s *Sim) QueryCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.queryCalls
}

// FailReads makes the next n datastore GETs of flat files fail.
func (s *Sim) FailReads(n int) {
	s.mu.Lock()
	s.faults.readFailures = n
	s.mu.Unlock()
}

// FlatBytesServed returns how many bytes of flat files datastore GETs have
// served, and in how many requests.
func (s *Sim) FlatBytesServed() (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.flatBytes, s.faults.flatGets
}

// ResetChangeTracking gives every disk of the VM a new change-tracking
// identity, as vSphere does when CBT is reset: earlier changeIds then fault.
func (s *Sim) ResetChangeTracking(vm string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.vmDisks[vm]
	if len(ids) == 0 {
		return fmt.Errorf("vm %q has no disks", vm)
	}
	for _, id := range ids {
		d := s.disks[id]
		d.uuid, d.writes = newChangeUUID(), nil
	}
	return nil
}

// ExpireSessions ends every session that exists now: their SOAP calls fail
// with NotAuthenticated and their cookies no longer open datastore files.
func (s *Sim) ExpireSessions() {
	s.mu.Lock()
	for k := range s.sessions {
		s.sessions[k] = true
	}
	s.mu.Unlock()
}

// FailMethod adds a simulator fault rule: every call of method (e.g.
// "CreateSnapshot_Task") fails with fault.
func (s *Sim) FailMethod(method string, fault types.BaseMethodFault) {
	s.model.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: method, ObjectType: "*", ObjectName: "*",
		Probability: 1, Fault: fault, Message: "injected " + method + " failure", Enabled: true,
	})
}

// ClearFaults removes fault rules and the harness's own faults.
func (s *Sim) ClearFaults() {
	s.model.Service.ClearFaultRules()
	s.mu.Lock()
	s.faults.queryFailAfter, s.faults.readFailures, s.faults.pageLimit, s.faults.expireAfter = -1, 0, 0, -1
	s.faults.delays = nil
	s.mu.Unlock()
}

// liveSession reports whether the request carries the cookie of a session
// that made a call and has not expired.
func (s *Sim) liveSession(r *http.Request) bool {
	c, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expired, known := s.sessions[c.Value]
	return known && !expired
}

// serveFolderRead serves datastore GETs with authentication, read faults
// and accounting, then hands them to the simulator.
func (s *Sim) serveFolderRead(w http.ResponseWriter, r *http.Request) {
	if !s.liveSession(r) {
		unauthorized(w)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "-flat.vmdk") {
		s.model.Service.ServeDatastore(w, r)
		return
	}
	s.mu.Lock()
	fail := s.faults.readFailures > 0
	if fail {
		s.faults.readFailures--
	}
	s.faults.flatGets++
	s.mu.Unlock()
	if fail {
		http.Error(w, "injected read error", http.StatusInternalServerError)
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	s.model.Service.ServeDatastore(cw, r)
	s.mu.Lock()
	s.faults.flatBytes += cw.n
	s.mu.Unlock()
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// serveFolderWrite replaces a datastore file with the request body, sparse
// where the body has whole zero blocks. A flat file a snapshot holds is
// refused (ESXi locks it); replacing a tracked disk resets its change
// tracking, since the writes bypassed the guest.
func (s *Sim) serveFolderWrite(w http.ResponseWriter, r *http.Request) {
	if !s.liveSession(r) {
		unauthorized(w)
		return
	}
	dir, err := s.datastoreDir(r.URL.Query().Get("dsName"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, "/folder/")
	if strings.Contains(rel, "..") || rel == "" {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	name := filepath.Join(dir, filepath.FromSlash(path.Clean("/"+rel)))
	s.mu.Lock()
	var tracked *disk
	for _, d := range s.disks {
		if d.flat == name {
			tracked = d
		}
	}
	if tracked != nil && tracked.frozen > 0 {
		s.mu.Unlock()
		http.Error(w, "file is locked by a snapshot", http.StatusConflict)
		return
	}
	if tracked != nil {
		tracked.uuid, tracked.writes = newChangeUUID(), nil
	}
	s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	cr := &countingReader{r: r.Body}
	if err := copySparse(f, cr, 0); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := f.Truncate(cr.n); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Snapshots returns the names of the VM's snapshots.
func (s *Sim) Snapshots(ctx context.Context, vm string) ([]string, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Logout(context.WithoutCancel(ctx))
	f := find.NewFinder(c.Client)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		return nil, err
	}
	f.SetDatacenter(dc)
	o, err := f.VirtualMachine(ctx, vm)
	if err != nil {
		return nil, err
	}
	var m mo.VirtualMachine
	if err := o.Properties(ctx, o.Reference(), []string{"snapshot"}, &m); err != nil {
		return nil, err
	}
	var names []string
	if m.Snapshot != nil {
		var walk func([]types.VirtualMachineSnapshotTree)
		walk = func(ts []types.VirtualMachineSnapshotTree) {
			for _, t := range ts {
				names = append(names, t.Name)
				walk(t.ChildSnapshotList)
			}
		}
		walk(m.Snapshot.RootSnapshotList)
	}
	return names, nil
}
