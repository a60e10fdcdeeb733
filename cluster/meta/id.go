package meta

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"
)

// crockford is Crockford's base32 alphabet in lower case: no i, l, o or u,
// so IDs survive being read aloud and typed.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

const (
	idTimeChars = 10 // 50 bits of milliseconds: until the year 37648
	idRandChars = 8  // 40 random bits
)

// NewID returns an ID such as "rp-01jd3k9x8m2c4fxy7q": prefix, a dash, the
// time in milliseconds since 1970 as ten Crockford base32 digits and eight
// random digits read from rand (crypto/rand if nil). IDs sort by time as
// strings; times before 1970 count as 1970. With an empty prefix the dash is
// left out. The result is a valid name (see ValidName) when prefix is a
// short lower-case word.
//
// A scheduler may stamp a whole batch with one time. Forty random bits keep
// a collision among a thousand IDs of one millisecond below one in two
// million; the catalog refuses the rare duplicate with ErrExists.
//
// NewID panics if rand fails, as crypto/rand never does.
func NewID(prefix string, t time.Time, rand io.Reader) string {
	if rand == nil {
		rand = cryptoRand
	}
	var rb [5]byte
	if _, err := io.ReadFull(rand, rb[:]); err != nil {
		panic(fmt.Sprintf("meta: new id: read random: %v", err))
	}
	ms := max(t.UnixMilli(), 0)
	ms = min(ms, 1<<(5*idTimeChars)-1)

	b := make([]byte, 0, len(prefix)+1+idTimeChars+idRandChars)
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, '-')
	}
	for i := idTimeChars - 1; i >= 0; i-- {
		b = append(b, crockford[(ms>>(5*i))&31])
	}
	r := uint64(rb[0])<<32 | uint64(rb[1])<<24 | uint64(rb[2])<<16 | uint64(rb[3])<<8 | uint64(rb[4])
	for i := idRandChars - 1; i >= 0; i-- {
		b = append(b, crockford[(r>>(5*i))&31])
	}
	return string(b)
}

var cryptoRand = rand.Reader

// MaxName is the longest valid name.
const MaxName = 64

// ValidName reports whether s may name a source, tenant, restore point or
// job: 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a
// letter or digit. Such names are safe in URLs, file names and shell commands
// and contain no separator the catalog's index keys rely on.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkName returns an ErrInvalid error unless name is valid.
func checkName(what, name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("%s %q: want 1-%d characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit: %w",
		what, name, MaxName, ErrInvalid)
}
