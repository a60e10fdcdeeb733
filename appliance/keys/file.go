package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
)

// The master key file, version 1, is JSON. Sealed:
//
//	{
//	  "version": 1,
//	  "sealed": true,
//	  "kdf": {"name": "argon2id", "time": 3, "memory_kib": 65536, "threads": 2, "salt": "<16 bytes>"},
//	  "cipher": "aes-256-gcm",
//	  "check": "<16 bytes>",
//	  "nonce": "<12 bytes>",
//	  "key": "<48 bytes: the sealed master key and its tag>"
//	}
//
// argon2id turns passphrase and salt into a root; HKDF-SHA-256 derives from
// it the AES-256-GCM key that seals the master key and the check value,
// which tells a wrong passphrase (check differs) from a damaged file (check
// matches, authentication fails) at no cost to an attacker's work. Unsealed:
//
//	{"version": 1, "sealed": false, "check": "<16 bytes>", "key": "<32 bytes>"}
//
// where check, derived from the key itself, catches a damaged key. Byte
// strings are standard base64. The KDF parameters live in the file so that
// new files can use stronger ones while old files still open.
type keyFile struct {
	Version int    `json:"version"`
	Sealed  bool   `json:"sealed"`
	KDF     *kdf   `json:"kdf,omitempty"`
	Cipher  string `json:"cipher,omitempty"`
	Check   []byte `json:"check"`
	Nonce   []byte `json:"nonce,omitempty"`
	Key     []byte `json:"key"`
}

type kdf struct {
	Name string `json:"name"`
	cost
	Salt []byte `json:"salt"`
}

// cost is what turning a passphrase into a key with argon2id takes.
type cost struct {
	Time      uint32 `json:"time"`       // passes over memory
	MemoryKiB uint32 `json:"memory_kib"` // memory in KiB
	Threads   uint8  `json:"threads"`
}

// defaultCost costs about a tenth of a second and 64 MiB on a small VM.
var defaultCost = cost{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds on KDF parameters read from a file, so a damaged file cannot make
// the daemon spin for hours or exhaust memory.
const (
	minMemoryKiB = 8 << 10
	maxMemoryKiB = 1 << 20
	maxTime      = 64
	maxThreads   = 64
)

func (k cost) check() error {
	switch {
	case k.Time < 1 || k.Time > maxTime:
		return fmt.Errorf("kdf time %d outside 1-%d", k.Time, maxTime)
	case k.MemoryKiB < minMemoryKiB || k.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("kdf memory %d KiB outside %d-%d", k.MemoryKiB, minMemoryKiB, maxMemoryKiB)
	case k.Threads < 1 || k.Threads > maxThreads:
		return fmt.Errorf("kdf threads %d outside 1-%d", k.Threads, maxThreads)
	}
	return nil
}

const (
	fileVersion = 1
	kdfName     = "argon2id"
	cipherName  = "aes-256-gcm"
	masterSize  = 32
	saltSize    = 16
	checkSize   = 16
	nonceSize   = 12
	tagSize     = 16
	maxFileSize = 64 << 10
)

// aadMaster is the additional data of the sealed master key.
var aadMaster = []byte("cairn master key v1")

// parseFile decodes and checks the shape of a key file; it does no crypto.
func parseFile(b []byte) (*keyFile, error) {
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not a key file: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("key file version %d not supported", f.Version)
	}
	if len(f.Check) != checkSize {
		return nil, fmt.Errorf("check is %d bytes, want %d", len(f.Check), checkSize)
	}
	if !f.Sealed {
		if f.KDF != nil || f.Nonce != nil || f.Cipher != "" {
			return nil, errors.New("unsealed key file has sealing fields")
		}
		if len(f.Key) != masterSize {
			return nil, fmt.Errorf("key is %d bytes, want %d", len(f.Key), masterSize)
		}
		return &f, nil
	}
	switch {
	case f.KDF == nil:
		return nil, errors.New("sealed key file has no kdf")
	case f.KDF.Name != kdfName:
		return nil, fmt.Errorf("kdf %q not supported", f.KDF.Name)
	case len(f.KDF.Salt) < saltSize || len(f.KDF.Salt) > 64:
		return nil, fmt.Errorf("salt is %d bytes, want %d-64", len(f.KDF.Salt), saltSize)
	case f.Cipher != cipherName:
		return nil, fmt.Errorf("cipher %q not supported", f.Cipher)
	case len(f.Nonce) != nonceSize:
		return nil, fmt.Errorf("nonce is %d bytes, want %d", len(f.Nonce), nonceSize)
	case len(f.Key) != masterSize+tagSize:
		return nil, fmt.Errorf("sealed key is %d bytes, want %d", len(f.Key), masterSize+tagSize)
	}
	if err := f.KDF.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *keyFile) marshal() []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("keys: marshal key file: %v", err)) // only byte slices, ints and strings
	}
	return append(b, '\n')
}

// sealFile seals master under passphrase with fresh salt and nonce.
func sealFile(master, passphrase []byte, c cost, rand io.Reader) (*keyFile, error) {
	f := &keyFile{
		Version: fileVersion,
		Sealed:  true,
		KDF:     &kdf{Name: kdfName, cost: c, Salt: make([]byte, saltSize)},
		Cipher:  cipherName,
		Nonce:   make([]byte, nonceSize),
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand, f.KDF.Salt); err != nil {
		return nil, fmt.Errorf("read salt: %w", err)
	}
	if _, err := io.ReadFull(rand, f.Nonce); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	aead, check := f.passphraseKeys(passphrase)
	f.Check = check
	f.Key = aead.Seal(nil, f.Nonce, master, aadMaster)
	return f, nil
}

func plainFile(master []byte) *keyFile {
	return &keyFile{Version: fileVersion, Check: masterCheck(master), Key: append([]byte(nil), master...)}
}

// open returns the master key in f, unsealing it with passphrase if sealed.
func (f *keyFile) open(passphrase []byte) ([]byte, error) {
	if !f.Sealed {
		if subtle.ConstantTimeCompare(masterCheck(f.Key), f.Check) != 1 {
			return nil, fmt.Errorf("%w: check value does not match the key", ErrCorrupt)
		}
		return append([]byte(nil), f.Key...), nil
	}
	aead, check := f.passphraseKeys(passphrase)
	if subtle.ConstantTimeCompare(check, f.Check) != 1 {
		return nil, ErrWrongPassphrase
	}
	master, err := aead.Open(nil, f.Nonce, f.Key, aadMaster)
	if err != nil {
		return nil, fmt.Errorf("%w: the passphrase is right but the sealed key fails authentication", ErrCorrupt)
	}
	return master, nil
}

// passphraseKeys derives the sealing cipher and the check value.
func (f *keyFile) passphraseKeys(passphrase []byte) (cipher.AEAD, []byte) {
	c := f.KDF
	root := argon2.IDKey(passphrase, c.Salt, c.Time, c.MemoryKiB, c.Threads, 32)
	defer clear(root)
	kek := derive(root, "cairn master kek v1", 32)
	defer clear(kek)
	return newGCM(kek), derive(root, "cairn master passphrase check v1", checkSize)
}

func masterCheck(master []byte) []byte {
	return derive(master, "cairn master key check v1", checkSize)
}

func derive(secret []byte, info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, secret, nil, info, n)
	if err != nil {
		panic(fmt.Sprintf("keys: hkdf: %v", err)) // only for n > 255*32
	}
	return b
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("keys: aes: %v", err)) // only for a key that is not 16, 24 or 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("keys: gcm: %v", err))
	}
	return aead
}
