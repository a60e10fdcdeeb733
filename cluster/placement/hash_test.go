package placement

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// negLn must track the true logarithm, or weights stop being shares.
func TestNegLn(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	xs := []float64{0x1p-53, 0x1p-52, 0.5 * 0x1p-52, 1e-9, 0.25, 0.5, math.Sqrt2 / 2, 0.7071067811865476, 0.9, 1 - 0x1p-52, 1 - 0x1p-53}
	for range 200_000 {
		xs = append(xs, (float64(r.Uint64()>>12)+0.5)*0x1p-52)
	}
	for _, x := range xs {
		got, want := negLn(x), -math.Log(x)
		if ulps := math.Abs(got-want) / ulp(want); ulps > 1 {
			t.Fatalf("negLn(%v) = %v, want %v (%.1f ulp off)", x, got, want, ulps)
		}
	}
}

func ulp(x float64) float64 { return math.Nextafter(x, math.Inf(1)) - x }

// Exactly equal scores fall back to node IDs, so the order of Map.Nodes
// cannot decide a tie.
func TestTieOrder(t *testing.T) {
	t.Parallel()
	m := Map{Nodes: []Node{{ID: "b"}, {ID: "a"}}}
	x, y := entry{score: 1, node: 0}, entry{score: 1, node: 1}
	if m.beats(x, y) || !m.beats(y, x) || m.beats(x, x) {
		t.Error("equal scores are not ordered by node ID")
	}
}

// The exact bits of a few logarithms and scores. A platform or compiler
// that rounds differently (say, by fusing a multiply-add) fails here before
// it can disagree with its peers about owners.
func TestScoreBits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		x    float64
		bits uint64
	}{
		{0x1p-53, 0x40425e4f7b2737fa},
		{1e-9, 0x4034b927f32bffb8},
		{0.1, 0x40026bb1bbb55515},
		{0.3, 0x3ff34378fcbda721},
		{0.5, 0x3fe62e42fefa39ef},
		{0.7071067811865476, 0x3fd62e42fefa39ee},
		{0.75, 0x3fd269621134db92},
		{0.9, 0x3fbaf8e8210a415c},
		{0.999999, 0x3eb0c6f82d74d230},
		{1 - 0x1p-52, 0x3cb0000000000001},
	} {
		if got := math.Float64bits(negLn(tc.x)); got != tc.bits {
			t.Errorf("negLn(%v) bits = %#016x, want %#016x", tc.x, got, tc.bits)
		}
	}
	id, err := chunk.ParseID("f0b3c7249ea4fb81cbf427c6aaf7dcd5694a8e8c28eea7d3abc70fe2864f1c29")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		node string
		bits uint64
	}{
		{"node-01", 0x3ffc8b138c4abf6c},
		{"node-02", 0x3fe317fea0a1961e},
		{"r1-n1", 0x3fdac9b3b261604a},
	} {
		if got := math.Float64bits(score(1.5, nodeKey(tc.node), chunkKey(&id))); got != tc.bits {
			t.Errorf("score(1.5, %s, %s) bits = %#016x, want %#016x", tc.node, id.Short(), got, tc.bits)
		}
	}
}
