package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

func TestAdoptSharedKey(t *testing.T) {
	dir := t.TempDir()
	a := testMaster(t, 7)
	path := filepath.Join(dir, "master.key")
	b, st, err := Adopt(path, a.Share(), nil, true)
	if err != nil || !st.Created || st.Sealed {
		t.Fatalf("adopt: %v, %+v", err, st)
	}
	if b.key != a.key {
		t.Fatal("the adopted key differs from the shared one")
	}
	again, _, err := Load(path, nil, true)
	if err != nil || again.key != a.key {
		t.Fatalf("reload the adopted key: %v", err)
	}
	if _, _, err := Adopt(path, a.Share(), nil, true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("adopt over an existing key: %v, want ErrExist", err)
	}
	if _, _, err := Adopt(filepath.Join(dir, "other.key"), a.Share(), nil, false); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("adopt unsealed where not allowed: %v", err)
	}
	if _, _, err := Adopt(filepath.Join(dir, "short.key"), a.Share()[:5], nil, true); err == nil {
		t.Fatal("adopted a 5-byte key")
	}
	share := a.Share()
	share[0] ^= 1
	if bytes.Equal(share, a.Share()) {
		t.Fatal("Share hands out the key's own memory")
	}
}
