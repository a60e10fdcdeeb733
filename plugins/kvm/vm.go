package kvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/nbd"
)

// VM protects one drive (a block node) of a running QEMU through its QMP
// socket.
type VM struct {
	qmpPath, drive string
	tools          Tools
	now            func() time.Time
}

var _ plugins.Source = (*VM)(nil)

// NewVM returns a source for the block node drive of the QEMU listening on
// the QMP socket at qmpPath.
func NewVM(qmpPath, drive string, tools Tools) *VM {
	return &VM{qmpPath: qmpPath, drive: drive, tools: tools, now: time.Now}
}

// blockNode is one entry of query-named-block-nodes.
type blockNode struct {
	NodeName string `json:"node-name"`
	Drv      string `json:"drv"`
	Image    struct {
		VirtualSize int64 `json:"virtual-size"`
	} `json:"image"`
	DirtyBitmaps []struct {
		Name         string `json:"name"`
		Recording    bool   `json:"recording"`
		Persistent   bool   `json:"persistent"`
		Inconsistent bool   `json:"inconsistent"`
	} `json:"dirty-bitmaps"`
}

func (v *VM) node(ctx context.Context, q *qmp) (*blockNode, error) {
	var nodes []blockNode
	if err := q.execute(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return nil, err
	}
	for i := range nodes {
		if nodes[i].NodeName == v.drive {
			return &nodes[i], nil
		}
	}
	return nil, fmt.Errorf("block node %q: %w", v.drive, plugins.ErrNotFound)
}

// Objects lists the drive.
func (v *VM) Objects(ctx context.Context) ([]plugins.Object, error) {
	q, err := dialQMP(ctx, v.qmpPath)
	if err != nil {
		return nil, err
	}
	defer q.close()
	n, err := v.node(ctx, q)
	if err != nil {
		return nil, err
	}
	return []plugins.Object{{Name: v.drive, Kind: "qemu-drive", Size: n.Image.VirtualSize, Disks: 1,
		Info: map[string]string{"qmp": v.qmpPath, "format": n.Drv}}}, nil
}

// vmSnapshot is a fleecing export of one drive of a running VM. The fields
// record what Open made, so teardown undoes exactly that.
type vmSnapshot struct {
	v       *VM
	q       *qmp
	dir     string
	id      string
	newMap  string   // the new persistent bitmap, once added
	temps   []string // disabled copies of the old bitmaps
	fleece  bool     // the overlay node exists
	job     bool     // the backup job runs
	server  bool     // the NBD server runs
	export  bool     // the export exists
	disk    *disk
	bitmaps map[string]bitmap
	mu      sync.Mutex // serializes Close
	closed  bool
	err     error
}

// Open takes the point in time with one QMP transaction and exports it
// through QEMU's NBD server on a Unix socket in a private folder.
func (v *VM) Open(ctx context.Context, object string, opts plugins.OpenOptions) (_ plugins.Snapshot, err error) {
	if object != v.drive {
		return nil, fmt.Errorf("open %q: source holds only drive %q: %w", object, v.drive, plugins.ErrNotFound)
	}
	if opts.ChangedExtents != nil {
		return nil, fmt.Errorf("open %s: the kvm plugin finds changes with dirty bitmaps, not an extent list: %w", v.drive, plugins.ErrUnsupported)
	}
	q, err := dialQMP(ctx, v.qmpPath)
	if err != nil {
		return nil, err
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	sn := &vmSnapshot{v: v, q: q, id: hex.EncodeToString(r[:]), bitmaps: map[string]bitmap{}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("open %s: %w", v.drive, err), sn.teardown(context.WithoutCancel(ctx), false))
		}
	}()
	n, err := v.node(ctx, q)
	if err != nil {
		return nil, err
	}
	if sn.dir, err = os.MkdirTemp(v.tools.TempDir, "cairn-kvm-"); err != nil {
		return nil, err
	}
	overlay := filepath.Join(sn.dir, "fleece.qcow2")
	if _, err := v.tools.qemuImg(ctx, "create", "-q", "-f", "qcow2", overlay, strconv.FormatInt(n.Image.VirtualSize, 10)); err != nil {
		return nil, err
	}
	fleece := "cairn-fleece-" + sn.id
	if err := q.execute(ctx, "blockdev-add", map[string]any{
		"driver": "qcow2", "node-name": fleece, "backing": v.drive,
		"file": map[string]any{"driver": "file", "filename": overlay},
	}, nil); err != nil {
		return nil, err
	}
	sn.fleece = true

	name := newBitmapName(v.now())
	actions := []map[string]any{action("block-dirty-bitmap-add", map[string]any{"node": v.drive, "name": name, "persistent": true})}
	exported := map[string]string{}
	for _, b := range n.DirtyBitmaps {
		if !strings.HasPrefix(b.Name, BitmapPrefix) {
			continue
		}
		flags := []string{}
		if b.Recording {
			flags = append(flags, "auto")
		}
		if b.Inconsistent {
			flags = append(flags, "in-use")
		}
		sn.bitmaps[b.Name] = bitmap{Name: b.Name, Flags: flags}
		if !b.Recording || b.Inconsistent {
			continue
		}
		// A disabled copy freezes the dirty set at the same instant as the
		// data, while the bitmap itself goes on recording.
		tmp := fmt.Sprintf("cairn.fleece-%s-%d", sn.id, len(sn.temps))
		sn.temps = append(sn.temps, tmp)
		exported[b.Name] = tmp
		actions = append(actions,
			action("block-dirty-bitmap-add", map[string]any{"node": v.drive, "name": tmp, "persistent": false, "disabled": true}),
			action("block-dirty-bitmap-merge", map[string]any{"node": v.drive, "target": tmp, "bitmaps": []string{b.Name}}))
	}
	job := "cairn-backup-" + sn.id
	actions = append(actions, action("blockdev-backup", map[string]any{"job-id": job, "device": v.drive, "target": fleece, "sync": "none"}))
	if err := q.execute(ctx, "transaction", map[string]any{"actions": actions}, nil); err != nil {
		sn.temps = nil
		return nil, fmt.Errorf("take the point in time (create dirty bitmap %s): %w", name, err)
	}
	sn.newMap, sn.job = name, true

	sock := filepath.Join(sn.dir, "nbd.sock")
	if err := q.execute(ctx, "nbd-server-start", map[string]any{
		"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}},
	}, nil); err != nil {
		return nil, err
	}
	sn.server = true
	tmps := append([]string{}, sn.temps...)
	if err := q.execute(ctx, "block-export-add", map[string]any{
		"type": "nbd", "id": "cairn-export-" + sn.id, "node-name": fleece, "name": v.drive,
		"writable": false, "bitmaps": tmps,
	}, nil); err != nil {
		return nil, err
	}
	sn.export = true
	dial := func(ctx context.Context, opts nbd.Options) (*nbd.Client, error) {
		c, err := nbd.Dial(ctx, "unix", sock, opts)
		if err != nil {
			return nil, fmt.Errorf("connect to the VM's NBD export: %w", err)
		}
		return c, nil
	}
	c, err := dial(ctx, nbd.Options{Export: v.drive, MetaContexts: []string{nbd.ContextAllocation}})
	if err != nil {
		return nil, err
	}
	sn.disk = &disk{key: v.drive, client: c, export: v.drive, dial: dial, token: name, bitmaps: sn.bitmaps, exported: exported}
	// QEMU serves one QMP client at a time: let others (libvirt, an admin)
	// in while the backup reads, and connect again to tear down.
	q.close()
	sn.q = nil
	return sn, nil
}

func action(typ string, data map[string]any) map[string]any {
	return map[string]any{"type": typ, "data": data}
}

func (sn *vmSnapshot) Disks() []plugins.Disk { return []plugins.Disk{sn.disk} }

// Consistency is "crash-consistent": the guest keeps running and the export
// shows the disk as a power cut at the point in time would have left it.
func (sn *vmSnapshot) Consistency() string { return "crash-consistent" }

// Close tears the export down and rotates bitmaps as the package doc says.
func (sn *vmSnapshot) Close(ctx context.Context) error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return sn.err
	}
	sn.closed = true
	ok := sn.disk.succeeded()
	err := sn.disk.close()
	q, qerr := dialQMP(ctx, sn.v.qmpPath)
	if qerr != nil {
		sn.err = fmt.Errorf("close the export of %s: the export, its job and bitmaps stay until QEMU is reachable: %w",
			sn.v.drive, errors.Join(err, qerr))
		return sn.err
	}
	sn.q = q
	if terr := sn.teardown(ctx, ok); terr != nil || err != nil {
		sn.err = fmt.Errorf("close the export of %s: %w", sn.v.drive, errors.Join(err, terr))
	}
	return sn.err
}

// teardown undoes what Open made, in reverse order. With success it keeps
// the new bitmap and prunes old ones; otherwise it removes the new one.
func (sn *vmSnapshot) teardown(ctx context.Context, success bool) error {
	q, v := sn.q, sn.v
	var errs []error
	do := func(cmd string, args map[string]any) {
		var a any
		if args != nil {
			a = args
		}
		if err := q.execute(ctx, cmd, a, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if sn.export {
		do("block-export-del", map[string]any{"id": "cairn-export-" + sn.id, "mode": "hard"})
		errs = append(errs, sn.waitGone(ctx, "query-block-exports", "cairn-export-"+sn.id))
	}
	if sn.server {
		do("nbd-server-stop", nil)
	}
	if sn.job {
		job := "cairn-backup-" + sn.id
		do("block-job-cancel", map[string]any{"device": job, "force": true})
		errs = append(errs, sn.waitGone(ctx, "query-block-jobs", job))
	}
	if sn.fleece {
		do("blockdev-del", map[string]any{"node-name": "cairn-fleece-" + sn.id})
	}
	for _, tmp := range sn.temps {
		do("block-dirty-bitmap-remove", map[string]any{"node": v.drive, "name": tmp})
	}
	if sn.newMap != "" {
		if !success {
			do("block-dirty-bitmap-remove", map[string]any{"node": v.drive, "name": sn.newMap})
		} else {
			base := ""
			if sn.disk != nil {
				base = sn.disk.baseToken()
			}
			for name := range sn.bitmaps {
				if name != base {
					do("block-dirty-bitmap-remove", map[string]any{"node": v.drive, "name": name})
				}
			}
		}
	}
	if sn.dir != "" {
		errs = append(errs, os.RemoveAll(sn.dir))
	}
	errs = append(errs, q.close())
	return errors.Join(errs...)
}

// waitGone polls a query-* command until no entry has the given id (exports
// and jobs go away asynchronously).
func (sn *vmSnapshot) waitGone(ctx context.Context, query, id string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list []struct {
			ID     string `json:"id"`
			Device string `json:"device"`
		}
		if err := sn.q.execute(ctx, query, nil, &list); err != nil {
			return err
		}
		found := false
		for _, e := range list {
			found = found || e.ID == id || e.Device == id
		}
		if !found {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still lists %s after 30 s", query, id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
