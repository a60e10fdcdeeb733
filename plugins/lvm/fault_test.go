package lvm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/lvm"
)

// Command lines the plugin runs against testVG/testPool.
const (
	lvsLine     = "lvs --reportformat json --units b --nosuffix --options lv_name,vg_name,lv_attr,lv_size,pool_lv,thin_id,origin vg0"
	reserveLine = "dmsetup message vg0-pool--1-tpool 0 reserve_metadata_snap"
	releaseLine = "dmsetup message vg0-pool--1-tpool 0 release_metadata_snap"
)

func metaArg(p *pool) string { return p.metaPath() }

// backedUp returns a pool whose volume has one committed full backup, kept
// as snapshot data.cairn-src.1, with some data changed since.
func backedUp(t *testing.T) (*pool, *lvm.Source, *engine, *meta.RestorePoint) {
	t.Helper()
	needTools(t)
	p := newPool(t)
	content := make([]byte, 8*mib)
	for i := range 2 * mib {
		content[i] = byte(i%251) + 1
	}
	p.addVolume(testLV, content)
	src := p.source(t, lvm.Config{})
	e := newEngine(t)
	rp, _, err := e.run(t.Context(), src, testLV, nil)
	if err != nil {
		t.Fatalf("full backup: %v", err)
	}
	if err := p.write(testLV, mib, []byte("changed since the full backup")); err != nil {
		t.Fatal(err)
	}
	return p, src, e, rp
}

// checkFailed checks a failed backup: the error says what failed, the pool
// holds only the previous base, and nothing else is left.
func checkFailed(t *testing.T, p *pool, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("backup error %v, want one containing %q", err, want)
	}
	if left := p.leftovers("data.cairn-src.1"); len(left) > 0 {
		t.Errorf("after the failure: %q", left)
	}
	if got := p.snapshots(); !slices.Equal(got, []string{"data.cairn-src.1"}) {
		t.Errorf("after the failure the pool holds snapshots %q, want the previous base data.cairn-src.1", got)
	}
}

// checkBaseUsable checks the next backup is still an incremental from the
// previous base.
func checkBaseUsable(t *testing.T, p *pool, src *lvm.Source, e *engine, base *meta.RestorePoint) {
	t.Helper()
	clear(p.fail)
	clear(p.after)
	p.readFail = nil
	_, res, err := e.run(t.Context(), src, testLV, base)
	if err != nil {
		t.Fatalf("backup after the failure: %v", err)
	}
	if m := res.Disks[0].Method; m != lvm.MethodThinDelta || res.ReadBytes != chunk.BlockSize {
		t.Fatalf("backup after the failure: method %q read %d bytes, want thin-delta reading one block", m, res.ReadBytes)
	}
}

func TestFaults(t *testing.T) {
	busy := errors.New("dmsetup message vg0-pool--1-tpool 0 reserve_metadata_snap: exit status 1: device-mapper: message ioctl on vg0-pool--1-tpool failed: Device or resource busy")
	tests := []struct {
		name  string
		setup func(p *pool)
		want  string // in the backup's error
		calls []string
	}{
		{
			name: "lvcreate fails",
			setup: func(p *pool) {
				p.fail["lvcreate"] = errors.New("lvcreate: exit status 5: Cannot create new thin volume, free space in thin pool vg0/pool-1 reached threshold")
			},
			want:  "create snapshot data.cairn-src.2 of vg0/data: lvcreate: exit status 5: Cannot create new thin volume",
			calls: []string{lvsLine, "lvcreate --snapshot --name data.cairn-src.2 vg0/data", lvsLine},
		},
		{
			name:  "lvcreate fails after making the volume",
			setup: func(p *pool) { p.after["lvcreate"] = errors.New("lvcreate: exit status 5: udev sync failed") },
			want:  "udev sync failed",
			calls: []string{lvsLine, "lvcreate --snapshot --name data.cairn-src.2 vg0/data", lvsLine, "lvremove --yes vg0/data.cairn-src.2"},
		},
		{
			name:  "activation fails",
			setup: func(p *pool) { p.fail["lvchange"] = errors.New("lvchange: exit status 5: activation failed") },
			want:  "activate vg0/data.cairn-src.2: lvchange: exit status 5: activation failed",
			calls: []string{lvsLine, "lvcreate --snapshot --name data.cairn-src.2 vg0/data",
				"lvchange --activate y --ignoreactivationskip vg0/data.cairn-src.2", "lvremove --yes vg0/data.cairn-src.2"},
		},
		{
			name:  "reserve_metadata_snap fails",
			setup: func(p *pool) { p.fail[reserveLine] = busy },
			want:  "reserve a metadata snapshot of pool vg0/pool-1: " + busy.Error() + " (if no other tool holds the pool's metadata snapshot, an interrupted backup may have left it: release it with dmsetup message vg0-pool--1-tpool 0 release_metadata_snap)",
			calls: []string{lvsLine, "lvcreate --snapshot --name data.cairn-src.2 vg0/data",
				"lvchange --activate y --ignoreactivationskip vg0/data.cairn-src.2", lvsLine, lvsLine, reserveLine,
				"lvremove --yes vg0/data.cairn-src.2"},
		},
		{
			name: "thin_delta fails",
			setup: func(p *pool) {
				p.fail["thin_delta"] = errors.New("thin_delta: exit status 1: Unable to find mapping tree for snap1 (2)")
			},
			want: "compare thin devices 2 and 3 of pool vg0/pool-1: thin_delta: exit status 1: Unable to find mapping tree",
			calls: []string{lvsLine, "lvcreate --snapshot --name data.cairn-src.2 vg0/data",
				"lvchange --activate y --ignoreactivationskip vg0/data.cairn-src.2", lvsLine, lvsLine, reserveLine,
				"thin_delta --metadata-snap --snap1 2 --snap2 3 META", releaseLine, "lvremove --yes vg0/data.cairn-src.2"},
		},
		{
			name: "read error",
			setup: func(p *pool) {
				p.readFail = func(path string, off int64) error {
					if strings.HasSuffix(path, "data.cairn-src.2") {
						return errors.New("input/output error")
					}
					return nil
				}
			},
			want: "read snapshot data.cairn-src.2: input/output error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, src, e, base := backedUp(t)
			tt.setup(p)
			before := len(p.callLog())
			rp, _, err := e.run(t.Context(), src, testLV, base)
			if rp != nil {
				t.Fatalf("the failed backup made restore point %+v", rp)
			}
			checkFailed(t, p, err, tt.want)
			if tt.calls != nil {
				got := p.callLog()[before:]
				want := slices.Clone(tt.calls)
				for i := range want {
					want[i] = strings.ReplaceAll(want[i], "META", metaArg(p))
				}
				if !slices.Equal(got, want) {
					t.Errorf("commands run:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
			checkBaseUsable(t, p, src, e, base)
		})
	}
}

// failingStore fails every Put, as a full or broken cluster would.
type failingStore struct{ backup.Store }

func (failingStore) Put(context.Context, chunk.ID, []byte) (bool, error) {
	return false, errors.New("no space left on any replica")
}

// TestFailureAfterReading covers a failure the plugin cannot see (the
// store): without Committed, Close still removes the new snapshot.
func TestFailureAfterReading(t *testing.T) {
	p, src, e, base := backedUp(t)
	good := e.backup
	e.backup = &backup.Engine{Store: failingStore{e.store}}
	_, _, err := e.run(t.Context(), src, testLV, base)
	checkFailed(t, p, err, "no space left on any replica")
	e.backup = good
	checkBaseUsable(t, p, src, e, base)
}

// TestFullBackupCommands checks every command of a first backup, in order.
func TestFullBackupCommands(t *testing.T) {
	needTools(t)
	p := newPool(t)
	p.addVolume(testLV, make([]byte, 8*mib))
	e := newEngine(t)
	if _, _, err := e.run(t.Context(), p.source(t, lvm.Config{}), testLV, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		lvsLine,
		"lvcreate --snapshot --name data.cairn-src.1 vg0/data",
		"lvchange --activate y --ignoreactivationskip vg0/data.cairn-src.1",
		lvsLine,
		reserveLine,
		"thin_delta --metadata-snap --snap1 2 --snap2 2 " + p.metaPath(),
		releaseLine,
		lvsLine, // Committed: nothing older to remove
		"lvchange --activate n vg0/data.cairn-src.1", // Close: the kept base rests inactive
	}
	if got := p.callLog(); !slices.Equal(got, want) {
		t.Errorf("commands run:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestRotation checks Committed removes this source's older snapshots,
// including one an interrupted run left, and nothing of another source.
func TestRotation(t *testing.T) {
	p, src, e, base := backedUp(t)
	ctx := t.Context()
	cli := p.cli()
	for _, name := range []string{"data.cairn-src.7", "data.cairn-other.1", "data.manual"} {
		if err := cli.CreateSnapshot(ctx, testVG, testLV, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.run(ctx, src, testLV, base); err != nil {
		t.Fatal(err)
	}
	want := []string{"data.cairn-other.1", "data.cairn-src.8", "data.manual"}
	if got := p.snapshots(); !slices.Equal(got, want) {
		t.Errorf("after the backup the pool holds snapshots %q, want %q", got, want)
	}
	objs, err := src.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	// The user's own snapshot is a thin volume like any other; Cairn's are not.
	if !slices.Equal(names, []string{"data", "data.manual"}) {
		t.Errorf("Objects = %q, want data and data.manual", names)
	}
}

// TestBaseGone checks a missing or replaced base snapshot gives a full read
// of the allocated blocks instead of a wrong delta.
func TestBaseGone(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced=%v", replace), func(t *testing.T) {
			p, src, _, base := backedUp(t)
			ctx := t.Context()
			cli := p.cli()
			if err := cli.Remove(ctx, testVG, "data.cairn-src.1"); err != nil {
				t.Fatal(err)
			}
			if replace {
				// Same name, another thin device: the token's thin ID tells.
				if err := cli.CreateSnapshot(ctx, testVG, testLV, "data.cairn-src.1"); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := src.Open(ctx, testLV, plugins.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Close(ctx)
			ch, err := snap.Disks()[0].Changes(ctx, &plugins.Base{Capacity: 8 * mib, ChangeToken: base.Disks[0].ChangeToken})
			if err != nil {
				t.Fatal(err)
			}
			want := []plugins.Extent{{Offset: 0, Length: 2 * mib}}
			if ch.Delta || ch.Method != lvm.MethodAllocated || !slices.Equal(ch.Extents, want) {
				t.Errorf("Changes = %+v, want a full read of %v", ch, want)
			}
			if wantNote := "the base snapshot data.cairn-src.1 is gone or was replaced: reading the allocated blocks in full"; ch.Note != wantNote {
				t.Errorf("Note = %q, want %q", ch.Note, wantNote)
			}
		})
	}
}

// TestMetadataSnapshotsTakeTurns backs up two volumes of one pool at once:
// the kernel holds one metadata snapshot per pool, so without taking turns
// one reserve_metadata_snap would fail with EBUSY.
func TestMetadataSnapshotsTakeTurns(t *testing.T) {
	needTools(t)
	p := newPool(t)
	content := make([]byte, 8*mib)
	content[0] = 1
	for _, lv := range []string{"a", "b", "c", "d"} {
		p.addVolume(lv, content)
	}
	src := p.source(t, lvm.Config{})
	var wg sync.WaitGroup
	for _, lv := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			snap, err := src.Open(t.Context(), lv, plugins.OpenOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			defer snap.Close(t.Context())
			if _, err := snap.Disks()[0].Changes(t.Context(), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if left := p.leftovers(); len(left) > 0 {
		t.Errorf("left behind %q", left)
	}
}
