package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenBytes is the entropy of a generated admin token.
const tokenBytes = 32

// EnsureToken returns the admin token stored at path, creating the file
// (mode 0600, 32 random bytes in unpadded base64url) on first start. It
// refuses a token file that group or others can access, and an empty one.
func EnsureToken(path string) (string, error) {
	tok, err := readTokenFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create token directory: %w", err)
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(b)
	err = createFileExclusive(path, []byte(tok+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; use theirs.
		return readTokenFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	return tok, nil
}

func readTokenFile(path string) (string, error) {
	data, err := readPrivateFile(path, 4096)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token file %s holds more than one word", path)
	}
	return tok, nil
}
