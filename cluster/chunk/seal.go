package chunk

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The sealed format, version 1:
//
//	offset  size  field
//	0       4     magic "CRNK"
//	4       1     format version (1)
//	5       1     flags (bit 0: payload is zstd-compressed)
//	6       2     reserved, zero
//	8       8     key ID
//	16      12    GCM nonce (random)
//	28      n+16  AES-256-GCM(payload), additional data = bytes 0..28 ‖ chunk ID
//	28+n+16 4     CRC32C (Castagnoli) of every byte before it, big-endian
//
// Binding the chunk ID into the additional data means a sealed chunk cannot
// be presented under another ID, and the header cannot be altered unnoticed.
const (
	Magic         = "CRNK"
	Version       = 1
	HeaderSize    = 28
	TagSize       = 16
	CRCSize       = 4
	Overhead      = HeaderSize + TagSize + CRCSize
	MaxSealed     = MaxPlain + Overhead
	flagZstd      = 1 << 0
	knownFlags    = flagZstd
	offKeyID      = 8
	offNonce      = 16
	nonceSize     = 12
	minCompressed = 512 // below this, compression never pays for itself
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	zstdOnce sync.Once
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	bufs     = sync.Pool{New: func() any { b := make([]byte, 0, BlockSize+BlockSize/64); return &b }}
)

func codecs() (*zstd.Encoder, *zstd.Decoder) {
	zstdOnce.Do(func() {
		var err error
		zenc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder: %v", err))
		}
		zdec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(MaxPlain),
			zstd.WithDecoderMaxWindow(MaxPlain))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder: %v", err))
		}
	})
	return zenc, zdec
}

// Seal appends the sealed form of plain, whose ID is id, to dst and returns
// the extended slice. The payload is zstd-compressed only when that makes it
// smaller.
func (k *Key) Seal(dst []byte, id ID, plain []byte) ([]byte, error) {
	if len(plain) > MaxPlain {
		return dst, fmt.Errorf("seal chunk %s: %d bytes exceeds the %d-byte limit", id.Short(), len(plain), MaxPlain)
	}
	payload, flags := plain, byte(0)
	if len(plain) >= minCompressed && compressible(plain) {
		enc, _ := codecs()
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		if c := enc.EncodeAll(plain, (*bp)[:0]); len(c) < len(plain) {
			payload, flags = c, flagZstd
			*bp = c[:0]
		}
	}

	start := len(dst)
	dst = grow(dst, Overhead+len(payload))
	hdr := dst[start : start+HeaderSize]
	copy(hdr, Magic)
	hdr[4] = Version
	hdr[5] = flags
	hdr[6], hdr[7] = 0, 0
	copy(hdr[offKeyID:], k.id[:])
	nonce := hdr[offNonce : offNonce+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return dst[:start], fmt.Errorf("seal chunk %s: nonce: %w", id.Short(), err)
	}
	var aad [HeaderSize + IDSize]byte
	copy(aad[:], hdr)
	copy(aad[HeaderSize:], id[:])
	dst = k.aead.Seal(dst[:start+HeaderSize], nonce, payload, aad[:])
	crc := crc32.Checksum(dst[start:], castagnoli)
	return binary.BigEndian.AppendUint32(dst, crc), nil
}

// Unseal checks, decrypts and decompresses sealed, re-hashes the plaintext and
// appends it to dst. Every failure to prove that sealed is the chunk id under
// this key is an ErrCorrupt, except a chunk sealed under another key (ErrKey).
func (k *Key) Unseal(dst []byte, id ID, sealed []byte) ([]byte, error) {
	h, err := parse(sealed)
	if err != nil {
		return dst, fmt.Errorf("unseal chunk %s: %w", id.Short(), err)
	}
	if h.key != k.id {
		return dst, fmt.Errorf("unseal chunk %s: key %s, have %s: %w", id.Short(), h.key, k.id, ErrKey)
	}
	var aad [HeaderSize + IDSize]byte
	copy(aad[:], sealed[:HeaderSize])
	copy(aad[HeaderSize:], id[:])
	body := sealed[HeaderSize : len(sealed)-CRCSize]
	nonce := sealed[offNonce : offNonce+nonceSize]

	start := len(dst)
	if h.flags&flagZstd == 0 {
		dst, err = k.aead.Open(dst, nonce, body, aad[:])
		if err != nil {
			return dst[:start], fmt.Errorf("unseal chunk %s: authentication failed: %w", id.Short(), ErrCorrupt)
		}
	} else {
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		payload, err := k.aead.Open((*bp)[:0], nonce, body, aad[:])
		if err != nil {
			return dst, fmt.Errorf("unseal chunk %s: authentication failed: %w", id.Short(), ErrCorrupt)
		}
		*bp = payload[:0]
		_, dec := codecs()
		dst, err = dec.DecodeAll(payload, dst)
		if err != nil {
			return dst[:start], fmt.Errorf("unseal chunk %s: decompress: %v: %w", id.Short(), err, ErrCorrupt)
		}
		if len(dst)-start > MaxPlain {
			return dst[:start], fmt.Errorf("unseal chunk %s: plaintext over %d bytes: %w", id.Short(), MaxPlain, ErrCorrupt)
		}
	}
	if got := k.Sum(dst[start:]); !hmac.Equal(got[:], id[:]) {
		return dst[:start], fmt.Errorf("unseal chunk %s: content hashes to %s: %w", id.Short(), got.Short(), ErrCorrupt)
	}
	return dst, nil
}

// Sampling: a block larger than sampleSpan×samples is compressed only if
// samples taken from its start, middle and end save at least 1/32 between
// them. On incompressible data (already compressed or encrypted disks) this
// saves a whole-block attempt that costs more than the encryption.
const (
	sampleSpan = 32 << 10
	samples    = 3
)

func compressible(plain []byte) bool {
	if len(plain) <= sampleSpan*samples*4 {
		return true
	}
	enc, _ := codecs()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	saved := 0
	for i := range samples {
		off := (len(plain) - sampleSpan) * i / (samples - 1)
		c := enc.EncodeAll(plain[off:off+sampleSpan], (*bp)[:0])
		saved += sampleSpan - len(c)
	}
	return saved >= sampleSpan*samples/32
}

// Check verifies a sealed chunk's structure and outer CRC without any key; it
// is what a node runs when it stores or scrubs a chunk.
func Check(sealed []byte) error {
	_, err := parse(sealed)
	return err
}

// KeyOf returns the ID of the key a sealed chunk was sealed under.
func KeyOf(sealed []byte) (KeyID, error) {
	h, err := parse(sealed)
	return h.key, err
}

type header struct {
	flags byte
	key   KeyID
}

func parse(sealed []byte) (header, error) {
	var h header
	if len(sealed) < Overhead {
		return h, fmt.Errorf("%d bytes is shorter than a sealed chunk: %w", len(sealed), ErrCorrupt)
	}
	if len(sealed) > MaxSealed {
		return h, fmt.Errorf("%d bytes is longer than a sealed chunk: %w", len(sealed), ErrCorrupt)
	}
	if !bytes.Equal(sealed[:4], []byte(Magic)) {
		return h, fmt.Errorf("bad magic %q: %w", sealed[:4], ErrCorrupt)
	}
	n := len(sealed) - CRCSize
	if want, got := binary.BigEndian.Uint32(sealed[n:]), crc32.Checksum(sealed[:n], castagnoli); want != got {
		return h, fmt.Errorf("crc32c %08x, recorded %08x: %w", got, want, ErrCorrupt)
	}
	if sealed[4] != Version {
		return h, fmt.Errorf("format version %d is not supported: %w", sealed[4], ErrCorrupt)
	}
	h.flags = sealed[5]
	if h.flags&^knownFlags != 0 || sealed[6] != 0 || sealed[7] != 0 {
		return h, fmt.Errorf("unknown flags %#x: %w", sealed[5:8], ErrCorrupt)
	}
	copy(h.key[:], sealed[offKeyID:])
	return h, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}
