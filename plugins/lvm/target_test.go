package lvm_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/lvm"
	"github.com/cairnhq/cairn/plugins/plugintest"
)

const restoredLV = "restored"

func TestTargetConformance(t *testing.T) {
	const capacity = plugintest.DefaultCapacity / 512 * 512
	plugintest.RunTarget(t, plugintest.TargetHarness{
		Capacity: capacity,
		Align:    512,
		New: func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
			p := newPool(t)
			if existing {
				p.addVolume(restoredLV, bytes.Repeat([]byte("old volume "), capacity/11+1)[:capacity])
			}
			tg, err := lvm.NewKind(p.options()).NewTarget(t.Context(), plugins.TargetConfig{Location: testVG,
				Overwrite: overwrite, Options: map[string]string{lvm.OptionLVName: restoredLV}, Object: testLV})
			if err != nil {
				t.Fatal(err)
			}
			return plugintest.TargetFixture{
				Target:    tg,
				Read:      func() ([]byte, error) { return p.readVolume(restoredLV, capacity) },
				Leftovers: func() ([]string, error) { return p.restoreLeftovers(), nil },
			}
		},
	})
}

// readVolume returns a volume's first n bytes, after checking LVM's
// rounding up to whole extents left only zeros past them.
func (p *pool) readVolume(name string, n int64) ([]byte, error) {
	p.mu.Lock()
	v := p.vols[name]
	p.mu.Unlock()
	if v == nil {
		return nil, fmt.Errorf("volume %s: %w", name, fs.ErrNotExist)
	}
	b, err := os.ReadFile(p.path(name))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < n || bytes.ContainsFunc(b[n:], func(r rune) bool { return r != 0 }) {
		return nil, fmt.Errorf("volume %s: %d bytes, not zero past %d", name, len(b), n)
	}
	return b[:n], nil
}

// restoreLeftovers lists unfinished restore volumes besides leftovers.
func (p *pool) restoreLeftovers() []string {
	out := p.leftovers()
	p.mu.Lock()
	defer p.mu.Unlock()
	for name := range p.vols {
		if strings.HasSuffix(name, ".cairn-restore") {
			out = append(out, "volume "+name)
		}
	}
	return out
}

// TestTargetReplacesABackedUpVolume restores over the very volume being
// backed up: Commit removes Cairn's snapshots of the old volume with it, and
// the next backup reads the restored volume in full.
func TestTargetReplacesABackedUpVolume(t *testing.T) {
	p, src, e, base := backedUp(t)
	ctx := t.Context()
	tg, err := lvm.NewKind(p.options()).NewTarget(ctx, plugins.TargetConfig{Location: testVG, Overwrite: true, Object: testLV})
	if err != nil {
		t.Fatal(err)
	}
	before := len(p.callLog())
	got := e.restoreTo(t, base) // the full backup's bytes, for comparison
	w, err := tg.Create(ctx, plugins.DiskSpec{Key: "disk0", Capacity: int64(len(got))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		lvsLine,
		"lvcreate --thin --virtualsize 16384s --name data.cairn-restore vg0/pool-1",
		lvsLine,
		"lvremove --yes vg0/data.cairn-src.1",
		"lvremove --yes vg0/data",
		"lvrename vg0 data.cairn-restore data",
	}
	if calls := p.callLog()[before:]; !slices.Equal(calls, want) {
		t.Errorf("commands run:\n  %s\nwant:\n  %s", strings.Join(calls, "\n  "), strings.Join(want, "\n  "))
	}
	if v, err := p.readVolume(testLV, int64(len(got))); err != nil || !bytes.Equal(v, got) {
		t.Fatalf("restored volume: %v", err)
	}
	if s := p.snapshots(); len(s) != 0 {
		t.Fatalf("snapshots of the replaced volume left: %q", s)
	}
	_, res, err := e.run(ctx, src, testLV, base)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Disks[0].Method; m != lvm.MethodAllocated {
		t.Errorf("backup after the restore: method %q, want a full read (allocated)", m)
	}
}

func TestTargetErrors(t *testing.T) {
	p := newPool(t)
	p.addVolume(testLV, make([]byte, 8<<20))
	kind := lvm.NewKind(p.options())
	for _, tc := range []struct {
		cfg  plugins.TargetConfig
		want string
	}{
		{plugins.TargetConfig{Location: "-vg", Object: testLV}, "volume group: name \"-vg\" starts with '-'"},
		{plugins.TargetConfig{Location: testVG, Object: testLV, Options: map[string]string{lvm.OptionLVName: "a/b"}}, "volume name (--lv-name)"},
		{plugins.TargetConfig{Location: testVG, Object: testLV, Options: map[string]string{lvm.OptionThinPool: "--x"}}, "thin pool"},
	} {
		if _, err := kind.NewTarget(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewTarget(%+v) error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tg, err := kind.NewTarget(t.Context(), plugins.TargetConfig{Location: testVG, Object: "root", Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	// The VG's linear volume "root" is not a thin volume: never replaced.
	if _, err := tg.Create(t.Context(), plugins.DiskSpec{Capacity: 8 << 20}); err == nil || !strings.Contains(err.Error(), "not a thin volume") {
		t.Errorf("Create over a linear volume: %v", err)
	}
}
