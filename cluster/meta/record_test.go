package meta

import (
	"reflect"
	"testing"
)

func TestDecodeRefuses(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {0}, {2, '{', '}'}, {recordV1}, {recordV1, '['}} {
		var rp RestorePoint
		if err := decode(b, &rp); err == nil {
			t.Errorf("decode(%q) succeeded", b)
		}
	}
}

// FuzzDecode feeds damaged records to the decoder: it must fail cleanly, and
// whatever it accepts must survive another round trip unchanged.
func FuzzDecode(f *testing.F) {
	seed, err := encode(testPoint("rp-1", "nas", "vm-1", t0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{recordV1, '{', '}'})
	f.Add([]byte{recordV1, 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rp RestorePoint
		if decode(b, &rp) != nil {
			return
		}
		again, err := encode(rp)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		var back RestorePoint
		if err := decode(again, &back); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, rp) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rp, back)
		}
	})
}
