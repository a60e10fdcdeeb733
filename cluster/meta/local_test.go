package meta

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnhq/cairn/cluster/chunk"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T) (*Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	l, err := OpenLocal(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func testSource(name string) Source {
	return Source{Name: name, Kind: "file", Tenant: "acme", Config: map[string]string{"path": "/srv/" + name}, Created: t0}
}

func testPoint(id, source, object string, at time.Time) RestorePoint {
	return RestorePoint{
		ID: id, Source: source, Object: object, Tenant: "acme", Time: at,
		Consistency: "crash",
		Disks: []Disk{{
			Key: "disk0", Capacity: 8 << 20, BlockSize: 4 << 20, Root: chunk.ID{1, 2, 3},
			Levels: 1, Fingerprint: "f0", Method: "full",
		}},
		LogicalBytes: 8 << 20, Fingerprint: "fp-" + id,
		Verify: VerifyState{State: VerifyNone},
	}
}

func mustAddSource(t *testing.T, l *Local, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := l.AddSource(context.Background(), testSource(n)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustCommit(t *testing.T, l *Local, rps ...RestorePoint) {
	t.Helper()
	for _, rp := range rps {
		if err := l.CommitRestorePoint(context.Background(), rp); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	l, path := openTest(t)
	mustAddSource(t, l, "nas")
	rp := testPoint("rp-1", "nas", "vm-1", t0)
	mustCommit(t, l, rp)
	job := Job{ID: "job-1", Kind: JobBackup, State: JobRunning, Source: "nas", Created: t0}
	if err := l.PutJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	key := WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{9}, Wrapped: []byte("sealed"), Created: t0}
	if err := l.PutKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err := OpenLocal(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := l.Source(ctx, "nas"); err != nil || !reflect.DeepEqual(got, testSource("nas")) {
		t.Errorf("source after reopen = %+v, %v", got, err)
	}
	if got, err := l.Latest(ctx, "nas", "vm-1"); err != nil || !reflect.DeepEqual(got, rp) {
		t.Errorf("latest after reopen = %+v, %v\nwant %+v", got, err, rp)
	}
	if got, err := l.Job(ctx, "job-1"); err != nil || !reflect.DeepEqual(got, job) {
		t.Errorf("job after reopen = %+v, %v", got, err)
	}
	if got, err := l.InterruptRunning(ctx, "n1", t0.Add(time.Hour)); err != nil || len(got) != 1 {
		t.Errorf("running jobs after reopen = %+v, %v; want job-1", got, err)
	}
	if got, err := l.Keys(ctx); err != nil || !reflect.DeepEqual(got, []WrappedKey{key}) {
		t.Errorf("keys after reopen = %+v, %v", got, err)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	calls := map[string]error{
		"AddSource": l.AddSource(ctx, testSource("nas")),
		"PutJob":    l.PutJob(ctx, Job{ID: "j", Kind: JobBackup, State: JobQueued, Created: t0}),
	}
	_, calls["Sources"] = l.Sources(ctx)
	_, calls["RestorePoints"] = l.RestorePoints(ctx, Filter{})
	_, calls["Keys"] = l.Keys(ctx)
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	l, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.AddSource(ctx, testSource("nas")); !errors.Is(err, context.Canceled) {
		t.Errorf("AddSource with canceled ctx = %v", err)
	}
	if _, err := l.Source(context.Background(), "nas"); !errors.Is(err, ErrNotFound) {
		t.Errorf("source written despite canceled ctx: %v", err)
	}
}

func TestOpenLockedFile(t *testing.T) {
	_, path := openTest(t)
	start := time.Now()
	_, err := OpenLocal(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open = %v, want a lock error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v despite a 50ms timeout", d)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	l, path := openTest(t)
	if err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(schemaVersion+1)))
	}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := OpenLocal(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open of a newer schema = %v, want refusal", err)
	}
}

func TestUnknownRecordVersion(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
	mustAddSource(t, l, "nas")
	if err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSources)
		v := append([]byte(nil), b.Get([]byte("nas"))...)
		v[0] = 2
		return b.Put([]byte("nas"), v)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Source(ctx, "nas"); err == nil || !strings.Contains(err.Error(), "record version 2") {
		t.Errorf("Source with a version 2 record = %v", err)
	}
	if _, err := l.Sources(ctx); err == nil {
		t.Error("Sources with a version 2 record succeeded")
	}
}
