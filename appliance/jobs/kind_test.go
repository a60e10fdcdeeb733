package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// vault is a plugin kind over the file plugin that needs a password, saves
// an object configuration, notes a fallback and reports a restore result:
// every part of the plugin contract the manager carries.
type vault struct {
	mu      sync.Mutex
	secrets []map[string]string // as NewSource and NewTarget received them
	config  []byte              // what the last target was given
}

func (v *vault) kind() plugins.Kind {
	return plugins.Kind{
		Name: "vault",
		NewSource: func(_ context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
			v.mu.Lock()
			v.secrets = append(v.secrets, maps.Clone(cfg.Secrets))
			v.mu.Unlock()
			if cfg.Secrets["password"] != "hunter2" {
				return nil, errors.New("wrong password")
			}
			return vaultSource{file.New(cfg.Settings["path"])}, nil
		},
		NewTarget: func(_ context.Context, cfg plugins.TargetConfig) (plugins.Target, error) {
			if cfg.Source == nil || cfg.Source.Secrets["password"] != "hunter2" {
				return nil, errors.New("restore target without its source's credentials")
			}
			v.mu.Lock()
			v.config = cfg.ObjectConfig
			v.mu.Unlock()
			return &vaultTarget{Target: file.NewTarget(cfg.Options["path"], false), name: cfg.Object}, nil
		},
	}
}

type vaultSource struct{ *file.Source }

func (s vaultSource) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	snap, err := s.Source.Open(ctx, object, opts)
	if err != nil {
		return nil, err
	}
	return vaultSnapshot{snap}, nil
}

type vaultSnapshot struct{ plugins.Snapshot }

func (vaultSnapshot) Describe(context.Context) ([]byte, error) { return []byte(`{"cpus":2}`), nil }

func (s vaultSnapshot) Disks() []plugins.Disk {
	var out []plugins.Disk
	for _, d := range s.Snapshot.Disks() {
		out = append(out, notingDisk{d})
	}
	return out
}

type notingDisk struct{ plugins.Disk }

func (d notingDisk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	ch, err := d.Disk.Changes(ctx, base)
	if err == nil {
		ch.Note = "tracking was reset: full read"
	}
	return ch, err
}

type vaultTarget struct {
	*file.Target
	name string
}

func (t *vaultTarget) Finish(context.Context) (map[string]string, error) {
	return map[string]string{"volume_id": "vol-" + t.name}, nil
}

func TestKindContract(t *testing.T) {
	ctx := context.Background()
	v := &vault{}
	f := newFixture(t, v.kind())
	img := f.image(t, "a.img", 5<<20)

	_, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "v", Kind: "vault", Config: map[string]string{"path": img},
		Secrets: map[string]string{"password": "wrong"}})
	if !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("a source its plugin refuses: %v, want ErrInvalid", err)
	}
	src, err := f.m.AddSource(ctx, api.AddSourceRequest{Name: "v", Kind: "vault", Config: map[string]string{"path": img},
		Secrets: map[string]string{"password": "hunter2"}})
	if err != nil || src.SealedSecrets != nil {
		t.Fatalf("add source: %+v, %v", src, err)
	}
	stored, err := f.catalog.Source(ctx, "v")
	if err != nil || len(stored.SealedSecrets) == 0 || bytes.Contains(stored.SealedSecrets, []byte("hunter2")) {
		t.Fatalf("the catalog must hold the password sealed: %q, %v", stored.SealedSecrets, err)
	}
	list, _ := f.m.Sources(ctx)
	if len(list) != 1 || list[0].SealedSecrets != nil {
		t.Fatalf("listed sources carry secrets: %+v", list)
	}

	j, err := f.m.StartBackup(ctx, api.BackupRequest{Source: "v"})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded || len(j.Messages) != 1 || !strings.Contains(j.Messages[0], "tracking was reset") {
		t.Fatalf("backup job: %+v", j)
	}
	rp, _ := f.m.RestorePoint(ctx, j.RestorePoint)
	if string(rp.ObjectConfig) != `{"cpus":2}` {
		t.Fatalf("object config %q", rp.ObjectConfig)
	}

	out := f.dir + "/out.img"
	j, err = f.m.StartRestore(ctx, api.RestoreRequest{RestorePoint: rp.ID, To: "vault:v", Options: map[string]string{"path": out}})
	if err != nil {
		t.Fatal(err)
	}
	if j = wait(t, f.m, j.ID); j.State != meta.JobSucceeded || j.Result["volume_id"] != "vol-a.img" {
		t.Fatalf("restore job: %+v", j)
	}
	if got, _ := f.m.Job(ctx, j.ID); got.Result["volume_id"] != "vol-a.img" {
		t.Fatalf("the stored job lost its result: %+v", got)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) || string(v.config) != `{"cpus":2}` {
		t.Fatal("restore through the target differs")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.secrets[1:] {
		if s["password"] != "hunter2" {
			t.Fatalf("plugin got secrets %v", s)
		}
	}
}
