package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// cheap keeps argon2id fast in tests; one test uses defaultCost.
var cheap = cost{Time: 1, MemoryKiB: minMemoryKiB, Threads: 1}

// quick writes key files as Load does, at the cheap cost.
var quick = sealing{kdf: cheap, rand: rand.Reader}

var pass = []byte("correct horse battery staple")

func keyPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "master.key")
}

func mustLoad(t *testing.T, path string, passphrase []byte, allowUnsealed bool) (*Master, Status) {
	t.Helper()
	m, st, err := quick.load(path, passphrase, allowUnsealed)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

func TestLoadCreates(t *testing.T) {
	tests := []struct {
		name       string
		passphrase []byte
		allow      bool
		want       Status
		err        error
	}{
		{"sealed", pass, false, Status{Created: true, Sealed: true}, nil},
		{"sealed even when unsealed is allowed", pass, true, Status{Created: true, Sealed: true}, nil},
		{"unsealed when allowed", nil, true, Status{Created: true}, nil},
		{"unsealed when not allowed", nil, false, Status{}, ErrPassphraseRequired},
		{"empty passphrase is none", []byte{}, false, Status{}, ErrPassphraseRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := keyPath(t)
			m, st, err := quick.load(path, tt.passphrase, tt.allow)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Load = %v, want %v", err, tt.err)
			}
			if st != tt.want {
				t.Errorf("status = %+v (%s), want %+v", st, st, tt.want)
			}
			fi, serr := os.Stat(path)
			if err != nil {
				if m != nil || !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("failed Load returned %v and left a file (%v)", m, serr)
				}
				return
			}
			if serr != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file: %v, mode %v; want 0600", serr, fi.Mode())
			}
			if m.key == ([masterSize]byte{}) {
				t.Error("master key is all zeros")
			}
			again, st2 := mustLoad(t, path, tt.passphrase, tt.allow)
			if again.key != m.key {
				t.Error("reloaded key differs from the created one")
			}
			if want := (Status{Sealed: tt.want.Sealed}); st2 != want {
				t.Errorf("reload status = %+v, want %+v", st2, want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the key file", len(entries))
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	tests := map[Status]string{
		{Created: true, Sealed: true}: "created sealed master key",
		{Created: true}:               "created unsealed master key",
		{Sealed: true}:                "loaded sealed master key",
		{}:                            "loaded unsealed master key",
	}
	for st, want := range tests {
		if st.String() != want {
			t.Errorf("%+v.String() = %q, want %q", st, st.String(), want)
		}
	}
}

func TestLoadExisting(t *testing.T) {
	tests := []struct {
		name       string
		sealed     bool
		mode       fs.FileMode
		passphrase []byte
		allow      bool
		err        error
		msg        string
	}{
		{"sealed", true, 0o600, pass, false, nil, ""},
		{"sealed, readable by all", true, 0o644, pass, false, nil, ""},
		{"sealed, no passphrase", true, 0o600, nil, true, ErrPassphraseRequired, "master key: passphrase required"},
		{"sealed, wrong passphrase", true, 0o600, []byte("Correct horse battery staple"), false, ErrWrongPassphrase, "master key: wrong passphrase"},
		{"unsealed, allowed", false, 0o600, nil, true, nil, ""},
		{"unsealed, owner read only", false, 0o400, nil, true, nil, ""},
		{"unsealed, not allowed", false, 0o600, nil, false, ErrUnsealed, "no passphrase was given"},
		{"unsealed, group readable", false, 0o640, nil, true, ErrPermissions, "mode 0640"},
		{"unsealed, world readable", false, 0o604, nil, true, ErrPermissions, "mode 0604"},
		{"unsealed, group writable", false, 0o620, nil, true, ErrPermissions, "mode 0620"},
		{"unsealed, readable by all, passphrase given", false, 0o644, pass, false, ErrPermissions, "mode 0644"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := keyPath(t)
			var created *Master
			if tt.sealed {
				created, _ = mustLoad(t, path, pass, false)
			} else {
				created, _ = mustLoad(t, path, nil, true)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			m, _, err := quick.load(path, tt.passphrase, tt.allow)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Load = %v, want %v", err, tt.err)
			}
			if err != nil {
				if m != nil {
					t.Error("failed Load returned a key")
				}
				if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not contain %q and the path", err, tt.msg)
				}
			} else if m.key != created.key {
				t.Error("loaded key differs from the created one")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("Load changed an existing key file")
			}
		})
	}
}

func TestLoadDamagedFile(t *testing.T) {
	edit := func(field string, f func(v any) any) func(map[string]any) {
		return func(m map[string]any) { m[field] = f(m[field]) }
	}
	flip := func(v any) any {
		b, _ := base64.StdEncoding.DecodeString(v.(string))
		b[len(b)/2] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	kdfField := func(name string, f func(v any) any) func(map[string]any) {
		return func(m map[string]any) { k := m["kdf"].(map[string]any); k[name] = f(k[name]) }
	}
	set := func(v any) func(any) any { return func(any) any { return v } }
	tests := []struct {
		name   string
		sealed bool
		edit   func(map[string]any)
		err    error // nil: any error
	}{
		{"sealed key bit flipped", true, edit("key", flip), ErrCorrupt},
		{"sealed nonce bit flipped", true, edit("nonce", flip), ErrCorrupt},
		{"sealed key shortened", true, edit("key", set("AAAA")), ErrCorrupt},
		{"check bit flipped", true, edit("check", flip), ErrWrongPassphrase},
		{"salt bit flipped", true, kdfField("salt", flip), nil},
		{"kdf time changed", true, kdfField("time", set(2)), nil},
		{"kdf memory absurd", true, kdfField("memory_kib", set(1<<31)), ErrCorrupt},
		{"kdf unknown", true, kdfField("name", set("scrypt")), ErrCorrupt},
		{"cipher unknown", true, edit("cipher", set("chacha20")), ErrCorrupt},
		{"sealed flag cleared", true, edit("sealed", set(false)), ErrCorrupt},
		{"version 2", true, edit("version", set(2)), ErrCorrupt},
		{"unsealed key bit flipped", false, edit("key", flip), ErrCorrupt},
		{"unsealed check bit flipped", false, edit("check", flip), ErrCorrupt},
		{"unsealed flag set", false, edit("sealed", set(true)), ErrCorrupt},
		{"unsealed with a kdf", false, edit("kdf", set(map[string]any{"name": "argon2id"})), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := keyPath(t)
			var passphrase []byte
			if tt.sealed {
				passphrase = pass
			}
			mustLoad(t, path, passphrase, true)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			b, _ = json.Marshal(m)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			got, _, err := quick.load(path, passphrase, true)
			if err == nil || got != nil {
				t.Fatalf("Load of a damaged file = %v, %v; want an error", got, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Load = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestLoadNotAKeyFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(path string) error
		err   error
	}{
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }, ErrCorrupt},
		{"truncated", func(p string) error { return os.WriteFile(p, []byte(`{"version":1,"sealed":tr`), 0o600) }, ErrCorrupt},
		{"huge", func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte{' '}, maxFileSize+1), 0o600) }, ErrCorrupt},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := keyPath(t)
			if err := tt.setup(path); err != nil {
				t.Fatal(err)
			}
			if _, _, err := quick.load(path, pass, true); !errors.Is(err, tt.err) {
				t.Errorf("Load = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestLoadCreateFailures(t *testing.T) {
	t.Run("no directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "master.key")
		if _, _, err := quick.load(path, pass, false); err == nil {
			t.Error("Load into a missing directory succeeded")
		}
	})
	t.Run("random fails", func(t *testing.T) {
		path := keyPath(t)
		_, _, err := sealing{kdf: cheap, rand: iotest.ErrReader(iotest.ErrTimeout)}.load(path, pass, false)
		if !errors.Is(err, iotest.ErrTimeout) {
			t.Errorf("Load = %v, want the reader's error", err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
			t.Errorf("failed create left %d files behind", len(entries))
		}
	})
	t.Run("weak kdf", func(t *testing.T) {
		weak := sealing{kdf: cost{Time: 1, MemoryKiB: 1024, Threads: 1}, rand: rand.Reader}
		if _, _, err := weak.load(keyPath(t), pass, false); err == nil {
			t.Error("Load sealed a key with 1 MiB of argon2id memory")
		}
	})
	t.Run("never overwrites", func(t *testing.T) {
		path := keyPath(t)
		if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(path, []byte("new"), false); !errors.Is(err, fs.ErrExist) {
			t.Errorf("writeFile over an existing file = %v, want ErrExist", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "precious" {
			t.Errorf("existing file now holds %q", b)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Errorf("failed write left %d files, want 1", len(entries))
		}
	})
}

func TestDefaultCost(t *testing.T) {
	path := keyPath(t)
	m, _, err := Load(path, pass, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	f, err := parseFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.KDF.cost != defaultCost {
		t.Errorf("file records %+v, want %+v", f.KDF.cost, defaultCost)
	}
	again, _, err := Load(path, pass, false)
	if err != nil || again.key != m.key {
		t.Errorf("reload: %v; same key %v", err, err == nil && again.key == m.key)
	}
}

func TestSealedFileHidesKey(t *testing.T) {
	for _, sealed := range []bool{true, false} {
		path := keyPath(t)
		var passphrase []byte
		if sealed {
			passphrase = pass
		}
		m, _ := mustLoad(t, path, passphrase, true)
		b, _ := os.ReadFile(path)
		found := containsKey(b, m.key[:])
		if sealed && found {
			t.Errorf("sealed file shows the key:\n%s", b)
		}
		if !sealed && !found {
			t.Error("unsealed file does not show the key: the search is broken")
		}
		if bytes.Contains(b, pass) {
			t.Error("file holds the passphrase")
		}
	}
}

// containsKey reports whether b holds key raw or in a common text encoding,
// whole or any 8-byte run of it.
func containsKey(b, key []byte) bool {
	for i := 0; i+8 <= len(key); i++ {
		part := key[i : i+8]
		if bytes.Contains(b, part) || bytes.Contains(bytes.ToLower(b), []byte(hex.EncodeToString(part))) {
			return true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
		// Each of three alignments of the key inside a longer base64 string.
		for skip := range 3 {
			s := enc.EncodeToString(key[skip:])
			if bytes.Contains(b, []byte(s[4:len(s)-4])) {
				return true
			}
		}
	}
	return false
}

func TestSealsUnsealedFile(t *testing.T) {
	path := keyPath(t)
	m, _ := mustLoad(t, path, nil, true)
	sealed, st := mustLoad(t, path, pass, false)
	if sealed.key != m.key || st != (Status{Sealed: true, NewlySealed: true}) {
		t.Fatalf("Load with a passphrase over an unsealed file: same key %v, status %+v", sealed.key == m.key, st)
	}
	b, _ := os.ReadFile(path)
	if containsKey(b, m.key[:]) {
		t.Error("the sealed file still shows the key")
	}
	if _, _, err := quick.load(path, nil, true); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("after sealing, Load without passphrase = %v", err)
	}
	again, st := mustLoad(t, path, pass, false)
	if again.key != m.key || st != (Status{Sealed: true}) {
		t.Errorf("reload after sealing: same key %v, status %+v", again.key == m.key, st)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("sealed file mode %v, want 0600", fi.Mode())
	}
}

func TestSave(t *testing.T) {
	path := keyPath(t)
	m, _ := mustLoad(t, path, pass, false)
	newPass := []byte("another passphrase")
	if err := quick.save(path, m, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("save without a passphrase = %v", err)
	}
	if err := quick.save(path, m, newPass); err != nil {
		t.Fatal(err)
	}
	if _, _, err := quick.load(path, pass, false); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("old passphrase after change = %v", err)
	}
	if again, _ := mustLoad(t, path, newPass, false); again.key != m.key {
		t.Error("changing the passphrase changed the key")
	}
	if err := quick.save(filepath.Join(t.TempDir(), "missing", "master.key"), m, pass); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries after saves, want 1", len(entries))
	}
}

// FuzzParseFile feeds arbitrary bytes to the key file parser: it must not
// panic, and what it accepts must survive a round trip.
func FuzzParseFile(f *testing.F) {
	m := &Master{}
	for i := range m.key {
		m.key[i] = byte(i)
	}
	sealed, err := sealFile(m.key[:], pass, cheap, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed.marshal())
	f.Add(plainFile(m.key[:]).marshal())
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"sealed":true,"kdf":{"name":"argon2id","time":4294967295,"memory_kib":4294967295,"threads":255}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseFile(b)
		if err != nil {
			return
		}
		if kf.Sealed {
			if err := kf.KDF.check(); err != nil {
				t.Fatalf("accepted a file whose kdf is out of bounds: %v", err)
			}
		}
		again, err := parseFile(kf.marshal())
		if err != nil {
			t.Fatalf("re-encoded file fails to parse: %v", err)
		}
		if !bytes.Equal(again.marshal(), kf.marshal()) {
			t.Fatal("round trip changed the file")
		}
	})
}
