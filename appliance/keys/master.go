package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// Master is the cluster's master key. It never shows its bytes: printing,
// logging or marshaling it yields a redacted placeholder.
type Master struct {
	key [masterSize]byte
}

const redacted = "keys.Master(redacted)"

// String, GoString, Format, LogValue and MarshalText keep the key out of
// every fmt verb, slog handler and encoder. They have value receivers so that
// a dereferenced Master is covered too.
func (Master) String() string               { return redacted }
func (Master) GoString() string             { return redacted }
func (Master) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (Master) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Master) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// derive returns n bytes derived from the master key for one purpose.
func (m *Master) derive(info string, n int) []byte { return derive(m.key[:], info, n) }

// sealing is how key files are written: the argon2id cost of a newly sealed
// file and the source of key, salt and nonce. Tests use a cheap cost.
type sealing struct {
	kdf  cost
	rand io.Reader
}

var defaultSealing = sealing{kdf: defaultCost, rand: rand.Reader}

// Status says what Load did, so the daemon can log it; an unsealed key
// deserves a loud warning.
type Status struct {
	Created     bool // the file did not exist and was written
	Sealed      bool // the key is sealed by a passphrase
	NewlySealed bool // the file held the key unsealed and Load sealed it
}

func (s Status) String() string {
	switch {
	case s.NewlySealed:
		return "sealed the unsealed master key with the passphrase"
	case s.Created && s.Sealed:
		return "created sealed master key"
	case s.Created:
		return "created unsealed master key"
	case s.Sealed:
		return "loaded sealed master key"
	}
	return "loaded unsealed master key"
}

// Load reads the master key at path, or creates it if the file does not
// exist.
//
// A new file is sealed when a passphrase is given, and unsealed (mode 0600)
// only if allowUnsealed; otherwise Load fails with ErrPassphraseRequired.
// A sealed file needs its passphrase: ErrPassphraseRequired without one,
// ErrWrongPassphrase with another. An unsealed file is refused with
// ErrPermissions if group or others may read or write it; given a
// passphrase, Load seals it in place (the key stays the same, so everything
// wrapped under it stays readable); given none, it is refused with
// ErrUnsealed unless allowUnsealed. A damaged file is ErrCorrupt.
//
// Writes are atomic and an existing key is never replaced by another.
func Load(path string, passphrase []byte, allowUnsealed bool) (*Master, Status, error) {
	return defaultSealing.load(path, passphrase, allowUnsealed)
}

func (s sealing) load(path string, passphrase []byte, allowUnsealed bool) (*Master, Status, error) {
	b, mode, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.create(path, passphrase, allowUnsealed)
	}
	if err != nil {
		return nil, Status{}, fmt.Errorf("master key: read %s: %w", path, err)
	}
	f, err := parseFile(b)
	if err != nil {
		return nil, Status{}, fmt.Errorf("master key: %w: %s: %v", ErrCorrupt, path, err)
	}
	st := Status{Sealed: f.Sealed}
	switch {
	case f.Sealed && len(passphrase) == 0:
		return nil, Status{}, fmt.Errorf("master key: %w: %s is sealed", ErrPassphraseRequired, path)
	case !f.Sealed && mode&0o077 != 0:
		return nil, Status{}, fmt.Errorf("master key: %w: %s holds the key unsealed and has mode %04o; make it 0600", ErrPermissions, path, mode)
	case !f.Sealed && len(passphrase) == 0 && !allowUnsealed:
		return nil, Status{}, fmt.Errorf("master key: %w: %s holds the key unsealed and no passphrase was given to seal it", ErrUnsealed, path)
	}
	key, err := f.open(passphrase)
	if err != nil {
		return nil, Status{}, fmt.Errorf("master key: %w for %s", err, path)
	}
	m := &Master{}
	copy(m.key[:], key)
	clear(key)
	if !f.Sealed && len(passphrase) > 0 {
		if err := s.save(path, m, passphrase); err != nil {
			return nil, Status{}, fmt.Errorf("master key: seal %s: %w", path, err)
		}
		st = Status{Sealed: true, NewlySealed: true}
	}
	return m, st, nil
}

func (s sealing) create(path string, passphrase []byte, allowUnsealed bool) (*Master, Status, error) {
	st := Status{Created: true, Sealed: len(passphrase) > 0}
	if !st.Sealed && !allowUnsealed {
		return nil, Status{}, fmt.Errorf("master key: %w to create %s: unsealed keys are not allowed here", ErrPassphraseRequired, path)
	}
	m := &Master{}
	if _, err := io.ReadFull(s.rand, m.key[:]); err != nil {
		return nil, Status{}, fmt.Errorf("master key: create %s: read random: %w", path, err)
	}
	b, err := s.encode(m, passphrase)
	if err != nil {
		return nil, Status{}, fmt.Errorf("master key: create %s: %w", path, err)
	}
	if err := writeFile(path, b, false); err != nil {
		return nil, Status{}, fmt.Errorf("master key: create %s: %w", path, err)
	}
	return m, st, nil
}

// Save seals m with passphrase and writes it to path, atomically replacing
// the file there: this is how the passphrase changes. The key stays the
// same, so everything wrapped under it stays readable.
func (m *Master) Save(path string, passphrase []byte) error {
	if err := defaultSealing.save(path, m, passphrase); err != nil {
		return fmt.Errorf("master key: save %s: %w", path, err)
	}
	return nil
}

func (s sealing) save(path string, m *Master, passphrase []byte) error {
	if len(passphrase) == 0 {
		return ErrPassphraseRequired
	}
	b, err := s.encode(m, passphrase)
	if err != nil {
		return err
	}
	return writeFile(path, b, true)
}

func (s sealing) encode(m *Master, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return plainFile(m.key[:]).marshal(), nil
	}
	f, err := sealFile(m.key[:], passphrase, s.kdf, s.rand)
	if err != nil {
		return nil, err
	}
	return f.marshal(), nil
}

// readFile reads a key file and its permission bits from the same open file.
func readFile(path string) ([]byte, fs.FileMode, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxFileSize {
		return nil, 0, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxFileSize)
	}
	return b, fi.Mode().Perm(), nil
}
