package placement

import (
	"testing"
)

// Owners on a 100-node map, with and without failure domains; the ns/op is
// the per-chunk cost of deciding where a chunk goes.
func BenchmarkOwners(b *testing.B) {
	sample := ids(1024, 17)
	for _, bc := range []struct {
		name string
		m    Map
	}{
		{"100nodes", Map{Nodes: cluster(100)}},
		{"100nodes-10racks", Map{Nodes: racked(10, 10), Domain: "rack"}},
		{"10nodes", Map{Nodes: cluster(10)}},
	} {
		b.Run(bc.name+"/Append", func(b *testing.B) {
			dst := make([]string, 0, MaxReplicas)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = bc.m.AppendOwners(dst[:0], sample[i%len(sample)])
			}
		})
		b.Run(bc.name+"/Owners", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = bc.m.Owners(sample[i%len(sample)])
			}
		})
	}
	b.Run("100nodes/Candidates", func(b *testing.B) {
		m := Map{Nodes: cluster(100)}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = m.Candidates(sample[i%len(sample)])
		}
	})
}
