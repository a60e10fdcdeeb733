package store_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// benchDirs returns where to benchmark: the test temp dir (usually a disk)
// and /dev/shm (a tmpfs, so the store's own cost shows) when there is one.
// Each call of the returned function makes a fresh directory and a function
// that removes it: one benchmark round's gigabytes should not pile up in
// memory under the next.
func benchDirs(b *testing.B) []benchDir {
	mk := func(base string) func(*testing.B) (string, func()) {
		return func(b *testing.B) (string, func()) {
			dir, err := os.MkdirTemp(base, "cairn-store-bench-")
			if err != nil {
				b.Fatal(err)
			}
			return dir, func() { os.RemoveAll(dir) }
		}
	}
	var dirs []benchDir
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dirs = append(dirs, benchDir{"shm", mk("/dev/shm")})
	}
	return append(dirs, benchDir{"tempdir", mk(b.TempDir())})
}

type benchDir struct {
	name  string
	mkdir func(*testing.B) (string, func())
}

// benchChunks seals a few distinct 4 MiB blocks of random data. The store
// checks only the outer CRC, so the benchmark reuses them under fresh IDs.
func benchChunks(b *testing.B) [][]byte {
	mk := storetest.NewMaker(b, 5, 5)
	out := make([][]byte, 8)
	for i := range out {
		out[i] = mk.Chunk(b, chunk.BlockSize).Sealed
	}
	return out
}

func benchID(n uint64) chunk.ID {
	var id chunk.ID
	binary.BigEndian.PutUint64(id[:], n)
	id[31] = 1
	return id
}

// BenchmarkPut puts 4 MiB sealed chunks from 8 goroutines, fsync and all,
// with one writer and with the default number (GOMAXPROCS, at most 4).
func BenchmarkPut(b *testing.B) {
	sealed := benchChunks(b)
	for _, d := range benchDirs(b) {
		for _, writers := range []int{1, 0} {
			name := fmt.Sprintf("%s/writers=%d", d.name, writers)
			if writers == 0 {
				name = d.name + "/writers=default"
			}
			b.Run(name, func(b *testing.B) {
				dir, remove := d.mkdir(b)
				defer remove()
				s, err := store.Open(dir, store.Options{Writers: writers})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var n atomic.Uint64
				b.SetBytes(int64(len(sealed[0])))
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if _, err := s.Put(ctx, benchID(i), sealed[i%uint64(len(sealed))]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkAppend is the yardstick for BenchmarkPut: plain sequential writes
// of the same bytes to one file on the same file system, with no fsync.
func BenchmarkAppend(b *testing.B) {
	sealed := benchChunks(b)
	for _, d := range benchDirs(b) {
		b.Run(d.name, func(b *testing.B) {
			dir, remove := d.mkdir(b)
			defer remove()
			f, err := os.Create(dir + "/append")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(sealed[0])))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := f.Write(sealed[i%len(sealed)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet reads 4 MiB chunks back from 8 goroutines.
func BenchmarkGet(b *testing.B) {
	sealed := benchChunks(b)
	for _, d := range benchDirs(b) {
		b.Run(d.name, func(b *testing.B) {
			dir, remove := d.mkdir(b)
			defer remove()
			s, err := store.Open(dir, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 64
			for i := range uint64(n) {
				if _, err := s.Put(ctx, benchID(i), sealed[i%uint64(len(sealed))]); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Uint64
			b.SetBytes(int64(len(sealed[0])))
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, benchID(next.Add(1)%n)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
