package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "admin.token")
	tok, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 {
		t.Errorf("token %d characters long, want 43 (32 bytes base64url)", len(tok))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("token file mode %04o, want 0600", perm)
	}
	again, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if again != tok {
		t.Error("second start made a new token instead of reading the file")
	}
	other, err := EnsureToken(filepath.Join(t.TempDir(), "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if other == tok {
		t.Error("two appliances got the same token")
	}
}

func TestEnsureTokenRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		perm          os.FileMode
		want          string
	}{
		{"group-readable", "secret\n", 0o640, "chmod 600"},
		{"world-readable", "secret\n", 0o604, "chmod 600"},
		{"empty", "\n", 0o600, "empty"},
		{"two words", "a b\n", 0o600, "more than one word"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), tt.perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tt.perm); err != nil { // past the umask
			t.Fatal(err)
		}
		_, err := EnsureToken(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
		if data, _ := os.ReadFile(path); string(data) != tt.content {
			t.Errorf("%s: the refused file was changed", tt.name)
		}
	}
}
