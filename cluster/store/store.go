// Package store is a node's local copy-on-write chunk store.
//
// Sealed chunks are appended to segment files that are never modified once
// written; a bbolt index maps each chunk ID to its segment, offset and length
// and records when it was last referenced. Compaction copies live chunks into
// new segments and deletes old segments whole. The store never sees keys or
// plaintext: it checks the sealed format's outer CRC32C on every write and
// read, which is all a node can check without keys.
//
// The package knows nothing of the cluster; placement and replication meet it
// through the Store contract below.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Errors returned by stores.
var (
	ErrNotFound = errors.New("chunk not found")
	ErrClosed   = errors.New("store closed")
)

// Store is the contract every chunk store keeps; storetest holds it to it.
//
//   - Put stores a sealed chunk under id. The sealed bytes must pass
//     chunk.Check (ErrCorrupt otherwise). If id is already present Put writes
//     nothing, refreshes its last-reference time and returns false. Nothing is
//     ever overwritten. When Put returns nil the chunk is durable: its bytes
//     and index entry are fsynced. The zero ID (chunk.Zero) is reserved for
//     all-zero blocks and refused. The caller must not modify sealed until
//     Put returns.
//   - Has answers for a batch of ids, in order, and refreshes the
//     last-reference time of those present: asking "have these?" before
//     skipping an upload is a reference.
//   - Get returns a copy of the sealed bytes after checking their outer CRC;
//     ErrNotFound if absent, chunk.ErrCorrupt if the stored bytes are damaged.
//   - Delete forgets ids (absent ones are ignored); their space comes back on
//     compaction. A deleted chunk may be Put again.
//   - Stat reports an entry's size and last-reference time. Neither Stat
//     nor Get counts as a reference.
//   - Walk visits every present chunk in ID order until fn returns an error,
//     which it returns. fn runs with no lock held, so it may use the store;
//     chunks added or removed during a Walk may or may not be visited.
//   - A call whose ctx is already done returns ctx's error and changes
//     nothing. Errors are wrapped with context; test them with errors.Is.
//   - Safe for concurrent use. After Close every call returns ErrClosed.
type Store interface {
	Put(ctx context.Context, id chunk.ID, sealed []byte) (stored bool, err error)
	Has(ctx context.Context, ids []chunk.ID) ([]bool, error)
	Get(ctx context.Context, id chunk.ID) ([]byte, error)
	Delete(ctx context.Context, ids []chunk.ID) error
	Stat(ctx context.Context, id chunk.ID) (Info, error)
	Walk(ctx context.Context, fn func(id chunk.ID, info Info) error) error
	Close() error
}

// Info describes a stored chunk.
type Info struct {
	Size    int64     // sealed bytes
	LastRef time.Time // last Put or Has that referenced it; when tombstoned, when that happened
	// Tombstoned marks a chunk garbage collection found unreferenced: the
	// next sweep deletes it unless a Put or Has references it first.
	Tombstoned bool
}
