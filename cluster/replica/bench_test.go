package replica_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/replica"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

// BenchmarkPut stores the same batches of new 256 KiB chunks into one
// local store and through a replica Store over three loopback nodes (three
// replicas: one local, two over mutual TLS), both with fsync, and reports
// each rate, their ratio, and the body bytes sent to peers per byte
// stored. Chunk sealing is outside the timings.
func BenchmarkPut(b *testing.B) {
	const size, batch = 256 << 10, 16
	c := newCluster(b, 3, true)
	s := c.store(replica.Options{})
	local, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer local.Close()
	mk := storetest.NewMaker(b, 3, 42)
	ctx := context.Background()
	var tLocal, tSpread time.Duration
	var bytes int64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		cs := mk.Chunks(b, batch, size)
		ids := make([]chunk.ID, batch)
		sealed := make([][]byte, batch)
		for i, ch := range cs {
			ids[i], sealed[i] = ch.ID, ch.Sealed
			bytes += int64(len(ch.Sealed))
		}
		b.StartTimer()

		start := time.Now()
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				if _, err := local.Put(ctx, ids[i], sealed[i]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		tLocal += time.Since(start)

		start = time.Now()
		if _, err := s.PutBatch(ctx, ids, sealed); err != nil {
			b.Fatal(err)
		}
		tSpread += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(tLocal), "local-MB/s")
	b.ReportMetric(mbps(tSpread), "spread-MB/s")
	b.ReportMetric(mbps(tSpread)/mbps(tLocal), "spread/local")
	var sent int64
	for _, cl := range c.clients {
		n, _ := cl.Traffic()
		sent += n
	}
	// Two of the three replicas cross the network; the third is local.
	b.ReportMetric(float64(sent)/float64(bytes), "net-bytes/byte")
}
