package vsphere_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/plugintest"
	"github.com/cairnhq/cairn/plugins/vsphere"
	"github.com/cairnhq/cairn/plugins/vsphere/vcsimtest"
)

func TestSourceConformance(t *testing.T) {
	plugintest.RunSource(t, plugintest.SourceHarness{
		Capacity: 10*mib + 5*1024, // a multiple of 1 KiB, with a partial last block
		Delta:    true,
		New: func(t *testing.T, content []byte) plugintest.SourceFixture {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s := startSim(t, vcsimtest.VM{Name: "vm1", Disks: []vcsimtest.Disk{{Capacity: int64(len(content)), Image: img}}})
			src, err := vsphere.Kind().NewSource(t.Context(), sourceConfig(s, "sim"))
			if err != nil {
				t.Fatal(err)
			}
			return plugintest.SourceFixture{Source: src, Object: "vm1",
				Write:     func(off int64, p []byte) error { return s.Write("vm1", 0, off, p) },
				Leftovers: func() ([]string, error) { return s.Snapshots(context.Background(), "vm1") },
			}
		},
	})
}

func TestTargetConformance(t *testing.T) {
	const capacity = 10*mib + 5*1024
	plugintest.RunTarget(t, plugintest.TargetHarness{
		Capacity:     capacity,
		ExistingOnly: true,
		New: func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
			s := startSim(t, vcsimtest.VM{Name: "vm1", PoweredOff: true, Disks: []vcsimtest.Disk{{Capacity: capacity}}})
			fill(t, s, "vm1", 7)
			// The saved configuration comes from a backup of the VM itself.
			a := newAppliance(t, s)
			rp := a.point(t, a.backup(t, "vm1"))
			sc := sourceConfig(s, "sim")
			spool := t.TempDir()
			tgt, err := vsphere.Kind().NewTarget(t.Context(), plugins.TargetConfig{Location: "sim", Overwrite: overwrite, Source: &sc,
				Object: "vm1", ObjectConfig: rp.ObjectConfig, Options: map[string]string{"in-place": "true", "spool-dir": spool}})
			if err != nil {
				t.Fatal(err)
			}
			return plugintest.TargetFixture{Target: &keyed{tgt},
				Read: func() ([]byte, error) { return live(t, s, "vm1", 0), nil },
				Leftovers: func() ([]string, error) {
					ents, err := os.ReadDir(spool)
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					return names, err
				},
			}
		},
	})
}

// keyed names the suite's disk as the VM's only disk.
type keyed struct{ plugins.Target }

func (k *keyed) Create(ctx context.Context, spec plugins.DiskSpec) (plugins.Writer, error) {
	spec.Key = "scsi0:0"
	return k.Target.Create(ctx, spec)
}

func TestObjects(t *testing.T) {
	s := startSim(t,
		vcsimtest.VM{Name: "db", Disks: []vcsimtest.Disk{{Capacity: 4 * mib}, {Capacity: 8 * mib}}, Tags: []string{"gold", "prod"}},
		vcsimtest.VM{Name: "off", PoweredOff: true, Disks: []vcsimtest.Disk{{Capacity: 2 * mib}}})
	src, err := vsphere.New(vsphere.Config{URL: s.URL.Host, User: s.User, Password: s.Password, CAFile: s.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("objects %+v", objs)
	}
	db, off := objs[0], objs[1]
	if db.Name != "db" || db.Kind != "vm" || db.Size != 12*mib || db.Disks != 2 || db.Info["path"] != "/DC0/vm/db" ||
		db.Info["power"] != "poweredOn" || db.Info["tags"] != "gold,prod" || db.Info["disks"] != "scsi0:0=4194304,scsi0:1=8388608" {
		t.Errorf("db = %+v", db)
	}
	if off.Name != "off" || off.Info["power"] != "poweredOff" {
		t.Errorf("off = %+v", off)
	}
	if _, err := src.Open(t.Context(), "nope", plugins.OpenOptions{}); !errors.Is(err, plugins.ErrNotFound) {
		t.Errorf("Open of a missing vm: %v", err)
	}
}

func TestConnectSecurity(t *testing.T) {
	s := startSim(t)
	base := vsphere.Config{URL: s.URL.String(), User: s.User, Password: s.Password}
	tests := []struct {
		name string
		mod  func(*vsphere.Config)
		want string // "" for success
	}{
		{"sha1 pin", func(c *vsphere.Config) { c.Thumbprint = s.Thumbprint }, ""},
		{"sha256 pin", func(c *vsphere.Config) { c.Thumbprint = s.Thumbprint256 }, ""},
		{"ca file", func(c *vsphere.Config) { c.CAFile = s.CAFile }, ""},
		{"wrong pin", func(c *vsphere.Config) { c.Thumbprint = strings.Repeat("AB:", 19) + "AB" }, "does not match the pinned one"},
		{"no pin, no ca", func(c *vsphere.Config) {}, "certificate"},
		{"wrong password", func(c *vsphere.Config) { c.Thumbprint = s.Thumbprint; c.Password = "not-" + s.Password }, "log in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			src, err := vsphere.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Objects(t.Context())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Objects: %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), cfg.Password) {
				t.Fatal("error text holds the password")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, sc := range []plugins.SourceConfig{
		{Settings: map[string]string{"user": "u"}, Secrets: map[string]string{"password": "p"}},
		{Settings: map[string]string{"url": "vc", "user": "u"}},
		{Settings: map[string]string{"url": "http://vc", "user": "u"}, Secrets: map[string]string{"password": "p"}},
		{Settings: map[string]string{"url": "https://u:p@vc", "user": "u"}, Secrets: map[string]string{"password": "p"}},
		{Settings: map[string]string{"url": "vc", "user": "u", "thumbprint": "zz"}, Secrets: map[string]string{"password": "p"}},
		{Settings: map[string]string{"url": "vc", "user": "u", "ca-file": "/nonexistent"}, Secrets: map[string]string{"password": "p"}},
	} {
		if _, err := vsphere.Kind().NewSource(t.Context(), sc); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("NewSource(%v): %v, want ErrInvalid", sc.Settings, err)
		}
	}
	if _, err := vsphere.Kind().NewTarget(t.Context(), plugins.TargetConfig{Location: "x"}); !errors.Is(err, plugins.ErrInvalid) {
		t.Errorf("NewTarget without a source: %v", err)
	}
}
