package keys

import (
	"bytes"
	"errors"
	"maps"
	"testing"
)

func TestSecrets(t *testing.T) {
	s := NewSecrets(testMaster(t, 1), nil)
	in := map[string]string{"password": "correct horse battery staple", "user": "backup@vsphere.local"}
	sealed, err := s.Seal("vc1", in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("correct horse")) {
		t.Fatal("the sealed record holds the password in the clear")
	}
	out, err := s.Open("vc1", sealed)
	if err != nil || !maps.Equal(in, out) {
		t.Fatalf("open: %v, %v", out, err)
	}
	again, _ := s.Seal("vc1", in)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same secrets are identical: the nonce is not random")
	}
	if none, err := s.Seal("vc1", nil); none != nil || err != nil {
		t.Fatalf("no secrets seal to %q, %v; want nil", none, err)
	}
	if none, err := s.Open("vc1", nil); none != nil || err != nil {
		t.Fatalf("nil opens to %v, %v; want nil", none, err)
	}

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, try := range map[string]func() (map[string]string, error){
		"another source":     func() (map[string]string, error) { return s.Open("vc2", sealed) },
		"another master key": func() (map[string]string, error) { return NewSecrets(testMaster(t, 2), nil).Open("vc1", sealed) },
		"a flipped bit":      func() (map[string]string, error) { return s.Open("vc1", flipped) },
		"a truncated record": func() (map[string]string, error) { return s.Open("vc1", sealed[:20]) },
		"another version":    func() (map[string]string, error) { return s.Open("vc1", append([]byte{9}, sealed[1:]...)) },
	} {
		got, err := try()
		if !errors.Is(err, ErrCorrupt) || got != nil {
			t.Errorf("%s: %v, %v; want ErrCorrupt", name, got, err)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), []byte("correct horse")) {
			t.Errorf("%s: the error shows the password", name)
		}
	}
}
