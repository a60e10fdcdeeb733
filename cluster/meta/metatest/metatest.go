// Package metatest is the conformance suite for catalog implementations:
// every implementation of the meta package contract (the single-node Local,
// the Raft state machine, the replicated catalog) passes the same checks, so a
// single node and a cluster behave alike to the appliance.
package metatest

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/meta"
)

// Catalog is every method of the catalog contract written in the meta
// package's doc comment: what the appliance's consumers (jobs.Catalog,
// keys.KeyStore) need, plus RemoveSource.
type Catalog interface {
	AddSource(ctx context.Context, s meta.Source) error
	Source(ctx context.Context, name string) (meta.Source, error)
	Sources(ctx context.Context) ([]meta.Source, error)
	RemoveSource(ctx context.Context, name string) error

	CommitRestorePoint(ctx context.Context, rp meta.RestorePoint) error
	RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error)
	RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error)
	Latest(ctx context.Context, source, object string) (meta.RestorePoint, error)
	SetVerify(ctx context.Context, id string, v meta.VerifyState) error

	PutJob(ctx context.Context, j meta.Job) error
	Job(ctx context.Context, id string) (meta.Job, error)
	Jobs(ctx context.Context, f meta.JobFilter) ([]meta.Job, error)
	InterruptRunning(ctx context.Context, node string, now time.Time) ([]meta.Job, error)

	PutKey(ctx context.Context, k meta.WrappedKey) error
	Keys(ctx context.Context) ([]meta.WrappedKey, error)
}

// Opener returns a new, empty catalog for one test. It fails t if it cannot
// and releases the catalog through t.Cleanup.
type Opener func(t *testing.T) Catalog

// Run checks the catalog open returns against the contract. Every check
// opens its own catalog.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AddSource", testAddSource},
		{"SourceNotFound", testSourceNotFound},
		{"SourcesSorted", testSourcesSorted},
		{"RemoveSource", testRemoveSource},
		{"SourceCopies", testSourceCopies},
		{"CommitRestorePoint", testCommitRestorePoint},
		{"RestorePointNotFound", testRestorePointNotFound},
		{"RestorePointsFilter", testRestorePointsFilter},
		{"Latest", testLatest},
		{"SetVerify", testSetVerify},
		{"RestorePointCopies", testRestorePointCopies},
		{"PutJob", testPutJob},
		{"PutJobReplaces", testPutJobReplaces},
		{"JobNotFound", testJobNotFound},
		{"JobsFilter", testJobsFilter},
		{"InterruptRunning", testInterruptRunning},
		{"JobCopies", testJobCopies},
		{"PutKey", testPutKey},
		{"KeysSortedAndCopied", testKeysSortedAndCopied},
		{"ConcurrentUse", testConcurrentUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// maxObject is the longest object name the contract accepts.
const maxObject = 4096

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testSource(name string) meta.Source {
	return meta.Source{Name: name, Kind: "file", Tenant: "acme", Config: map[string]string{"path": "/srv/" + name}, SealedSecrets: []byte("sealed:" + name), Created: t0}
}

func testPoint(id, source, object string, at time.Time) meta.RestorePoint {
	return meta.RestorePoint{
		ID: id, Source: source, Object: object, Tenant: "acme", Time: at,
		Consistency: "crash",
		Disks: []meta.Disk{{
			Key: "disk0", Capacity: 8 << 20, BlockSize: 4 << 20, Root: chunk.ID{1, 2, 3},
			Levels: 1, Fingerprint: "f0", Method: "full",
		}},
		LogicalBytes: 8 << 20, Fingerprint: "fp-" + id,
		Verify: meta.VerifyState{State: meta.VerifyNone},
	}
}

func mustAddSource(t *testing.T, l Catalog, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := l.AddSource(context.Background(), testSource(n)); err != nil {
			t.Fatal(err)
		}
	}
}

func mustCommit(t *testing.T, l Catalog, rps ...meta.RestorePoint) {
	t.Helper()
	for _, rp := range rps {
		if err := l.CommitRestorePoint(context.Background(), rp); err != nil {
			t.Fatal(err)
		}
	}
}
