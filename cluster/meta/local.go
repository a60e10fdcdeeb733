package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Local is the catalog of a single node, kept in one bbolt file. It keeps the
// package contract: every write is one fsynced bbolt transaction, records
// are encoded on the way in and decoded on the way out so nothing returned
// aliases what is stored, and no method reads the clock. Local is safe for
// concurrent use; after Close every method returns ErrClosed.
type Local struct {
	db *bolt.DB
}

// Options tune OpenLocal.
type Options struct {
	// Timeout bounds the wait for the file lock another process may hold;
	// zero means one second.
	Timeout time.Duration
}

// schemaVersion is the layout of buckets and keys. A file with a newer
// version is refused rather than misread.
const schemaVersion = 1

var (
	bucketMeta        = []byte("meta")
	bucketSources     = []byte("sources")          // name → Source
	bucketPoints      = []byte("points")           // id → RestorePoint
	bucketPointsIndex = []byte("points_by_object") // pointKey → id
	bucketJobs        = []byte("jobs")             // id → Job
	bucketJobsIndex   = []byte("jobs_by_created")  // jobKey → id
	bucketJobsActive  = []byte("jobs_active")      // id of each queued or running job → nothing
	bucketKeys        = []byte("keys")             // tenant → WrappedKey
	keySchema         = []byte("schema")
)

var allBuckets = [][]byte{
	bucketMeta, bucketSources, bucketPoints, bucketPointsIndex,
	bucketJobs, bucketJobsIndex, bucketJobsActive, bucketKeys,
}

// OpenLocal opens the catalog at path, creating it (mode 0600) if absent.
func OpenLocal(path string, opts Options) (*Local, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open catalog %s: locked by another process", path)
		}
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &Local{db: db}, nil
}

func initSchema(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	m := tx.Bucket(bucketMeta)
	v := m.Get(keySchema)
	if v == nil {
		return m.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("schema version %q: %w", v, err)
	}
	if n > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this build understands (%d)", n, schemaVersion)
	}
	return nil
}

// Close releases the file. It is safe to call more than once.
func (l *Local) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close catalog: %w", err)
	}
	return nil
}

func (l *Local) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(l.db.View(fn))
}

func (l *Local) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(l.db.Update(fn))
}

func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// get decodes the record under key in bucket into v; ErrNotFound if absent.
func get(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b := tx.Bucket(bucket).Get([]byte(key))
	if b == nil {
		return ErrNotFound
	}
	if err := decode(b, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

// put encodes v and stores it under key in bucket.
func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := encode(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}
