package backup_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/appliance/backup"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// BenchmarkIngest backs up a 512 MiB high-entropy image into a real store on
// tmpfs (when /dev/shm exists): the pipeline's own speed, without a disk.
func BenchmarkIngest(b *testing.B) {
	dir := "/dev/shm"
	if _, err := os.Stat(dir); err != nil {
		dir = b.TempDir()
	}
	dir, err := os.MkdirTemp(dir, "cairn-ingest-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "img")
	data := make([]byte, 512<<20)
	rand.Read(data)
	os.WriteFile(img, data, 0o600)
	key := testKeyB(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(filepath.Join(dir, "store"))
		st, err := store.Open(filepath.Join(dir, "store"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		snap, err := file.New(img).Open(context.Background(), "img", plugins.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := (&backup.Engine{Store: st}).Run(context.Background(), backup.Request{Key: key, Snapshot: snap}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		snap.Close(context.Background())
		st.Close()
		b.StartTimer()
	}
}
