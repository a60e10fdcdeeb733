package placement

import (
	"encoding/binary"
	"math"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// The score of node n for chunk c is weight(n) / -ln(u), with u in (0, 1)
// drawn from hash(n, c). Every step is integer arithmetic or a single IEEE
// operation, so it is bit-identical on every platform; see negLn for why the
// logarithm is our own.

// nodeKey hashes a node ID (FNV-1a, then mixed) into the key that seeds its
// draw for every chunk.
func nodeKey(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return mix(h)
}

// chunkKey folds all 32 bytes of a chunk ID into 64 bits. IDs are already
// HMAC output; the mixing keeps test IDs with structure (counters, zeros)
// from lining up.
func chunkKey(id *chunk.ID) uint64 {
	h := mix(binary.LittleEndian.Uint64(id[0:8]))
	h = mix(h ^ binary.LittleEndian.Uint64(id[8:16]))
	h = mix(h ^ binary.LittleEndian.Uint64(id[16:24]))
	return mix(h ^ binary.LittleEndian.Uint64(id[24:32]))
}

// mix is the SplitMix64 output function: a bijection on 64 bits with full
// avalanche, so keys that differ in one bit draw unrelated values.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// score is node's rendezvous weight for a chunk. Higher wins.
func score(weight float64, node, chunk uint64) float64 {
	h := mix(node ^ chunk)
	// The midpoint of one of 2^52 equal bins: exact, never 0 or 1.
	u := (float64(h>>12) + 0.5) * 0x1p-52
	return weight / negLn(u)
}

// fdlibm's log coefficients (as in Go's math/log.go).
const (
	ln2Hi = 6.93147180369123816490e-01 // 3fe62e42 fee00000
	ln2Lo = 1.90821492927058770002e-10 // 3dea39ef 35793c76
	lg1   = 6.666666666666735130e-01   // 3FE55555 55555593
	lg2   = 3.999999999940941908e-01   // 3FD99999 9997FA04
	lg3   = 2.857142874366239149e-01   // 3FD24924 94229359
	lg4   = 2.222219843214978396e-01   // 3FCC71C5 1D8E78AF
	lg5   = 1.818357216161805012e-01   // 3FC74664 96CB03DE
	lg6   = 1.531383769920937332e-01   // 3FC39A09 D078C69F
	lg7   = 1.479819860511658591e-01   // 3FC2F112 DF3E5244
)

// negLn returns -ln(x) for a normal, positive x below 1, within an ulp of the true
// value. math.Log will not do: on amd64 it is assembly and elsewhere Go, and
// Go may fuse x*y+z into one FMA on arm64, ppc64 and s390x; any of these can
// change the last bit, and a last bit can flip which node wins a near tie,
// so two platforms would disagree on a chunk's owners. This is fdlibm's
// algorithm with every product rounded explicitly (float64(...) forbids
// fusion, per the Go spec).
func negLn(x float64) float64 {
	// x = f1 · 2^ki with f1 in [0.5, 1); math.Frexp without the cases
	// (zero, subnormal, infinite) that cannot occur here.
	b := math.Float64bits(x)
	ki := int(b>>52&0x7ff) - 1022
	f1 := math.Float64frombits(b&^(0x7ff<<52) | 1022<<52)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)

	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * (lg1 + float64(s4*(lg3+float64(s4*(lg5+float64(s4*lg7)))))))
	t2 := float64(s4 * (lg2 + float64(s4*(lg4+float64(s4*lg6)))))
	r := t1 + t2
	hfsq := float64(0.5 * float64(f*f))
	return -(float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f))
}
