// Package meta holds the cluster's small facts: sources, restore points (the
// catalog), jobs and wrapped tenant keys. Chunk data never passes through it.
//
// The appliance reaches these facts through interfaces it declares itself.
// Local implements them on one node over bbolt; the Raft state machine of the
// cluster implements the same contract so that a single node is a one-member
// cluster on the same code path.
//
// Contract shared by every implementation:
//   - Writes are durable when they return.
//   - A restore point becomes visible only through CommitRestorePoint, which
//     is atomic and refuses a duplicate ID or a missing base.
//   - Objects returned are copies; changing them changes nothing stored.
//   - Names of sources and tenants and IDs of restore points and jobs are
//     valid names (ValidName); malformed input is refused with ErrInvalid.
//   - Nothing reads the clock or a random source: times and IDs come inside
//     the records, so replaying the same calls gives the same state.
package meta

import (
	"errors"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
)

// Errors returned by catalog implementations.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrClosed   = errors.New("catalog closed")
)

// Source is a configured system to back up from.
type Source struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Tenant string            `json:"tenant"`
	Config map[string]string `json:"config,omitempty"`
	// SealedSecrets are the source's credentials sealed under the master
	// key; the API never returns them.
	SealedSecrets []byte    `json:"sealed_secrets,omitempty"`
	Created       time.Time `json:"created"`
}

// Verify states of a restore point.
const (
	VerifyNone   = "unverified"
	VerifyOK     = "ok"
	VerifyFailed = "failed"
)

// RestorePoint is a committed backup of one object: a full restore point,
// however it was read.
type RestorePoint struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Object      string    `json:"object"`
	Tenant      string    `json:"tenant"`
	Time        time.Time `json:"time"`
	Base        string    `json:"base,omitempty"`
	Job         string    `json:"job,omitempty"`
	Consistency string    `json:"consistency"`
	Disks       []Disk    `json:"disks"`
	// LogicalBytes is the sum of the disks' capacities; ReadBytes what was
	// read from the source; NewBytes the plaintext of chunks this backup
	// stored for the first time and StoredBytes their sealed size.
	LogicalBytes int64 `json:"logical_bytes"`
	ReadBytes    int64 `json:"read_bytes"`
	NewBytes     int64 `json:"new_bytes"`
	StoredBytes  int64 `json:"stored_bytes"`
	Chunks       int64 `json:"chunks"`
	NewChunks    int64 `json:"new_chunks"`
	ZeroBlocks   int64 `json:"zero_blocks"`
	// Fingerprint is the SHA-256 root over the disks' index trees.
	Fingerprint string      `json:"fingerprint"`
	Verify      VerifyState `json:"verify"`
	Duration    float64     `json:"duration_seconds"`
	// LockedUntil is when the restore point's retention lock expires; until
	// then no one can delete it, admins included.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// ObjectConfig is the object's configuration as its plugin saved it (a
	// VM's settings), for restoring the object rather than only its disks.
	ObjectConfig []byte `json:"object_config,omitempty"`
}

// Disk is one disk of a restore point.
type Disk struct {
	Key         string   `json:"key"`
	Capacity    int64    `json:"capacity"`
	BlockSize   int64    `json:"block_size"`
	Root        chunk.ID `json:"root"`
	Levels      int      `json:"levels"`
	Fingerprint string   `json:"fingerprint"`
	Method      string   `json:"method"`
	ChangeToken string   `json:"change_token,omitempty"`
}

// VerifyState records the last verification of a restore point.
type VerifyState struct {
	State string    `json:"state"`
	At    time.Time `json:"at,omitzero"`
	Error string    `json:"error,omitempty"`
}

// Job kinds and states.
const (
	JobBackup  = "backup"
	JobRestore = "restore"
	JobVerify  = "verify"
	JobGC      = "gc"

	JobQueued      = "queued"
	JobRunning     = "running"
	JobSucceeded   = "succeeded"
	JobFailed      = "failed"
	JobCanceled    = "canceled"
	JobInterrupted = "interrupted" // its node stopped while it ran
)

// Job is a unit of long work and its outcome.
type Job struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	State  string `json:"state"`
	Source string `json:"source,omitempty"`
	Object string `json:"object,omitempty"`
	Target string `json:"target,omitempty"`
	// Base is the restore point a backup builds on, once it is known: it
	// cannot be deleted while the job runs.
	Base string `json:"base,omitempty"`
	// Node is the ID of the cluster member that runs the job; empty for a
	// job recorded before the appliance was a cluster.
	Node     string    `json:"node,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Progress Progress  `json:"progress"`
	Error    string    `json:"error,omitempty"`
	// Messages are notes a user should see, such as a fallback to a full read.
	Messages []string `json:"messages,omitempty"`
	// RestorePoint is the restore point a backup made, or the one a restore
	// or verify read.
	RestorePoint string        `json:"restore_point,omitempty"`
	Verify       *VerifyResult `json:"verify,omitempty"`
	// Result holds what a restore made, as its target reported it (for
	// example "volume_id").
	Result map[string]string `json:"result,omitempty"`
	// GC is what a garbage-collection job did.
	GC *GCResult `json:"gc,omitempty"`
	// Lease is when the running job's node must have renewed it by; a job
	// whose lease runs out is interrupted (see ExpireLeases). Zero for a
	// job recorded without one.
	Lease time.Time `json:"lease,omitzero"`
	// CancelRequested asks the node running the job to stop it; the node
	// sees it when it renews the lease.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Policy and Slot name the scheduled run a job is an attempt of.
	Policy string    `json:"policy,omitempty"`
	Slot   time.Time `json:"slot,omitzero"`
}

// GCResult is what a garbage-collection round found and did.
type GCResult struct {
	Epoch          uint64 `json:"epoch"`
	RestorePoints  int    `json:"restore_points"` // marked from
	LiveChunks     int64  `json:"live_chunks"`
	Scanned        int64  `json:"scanned"`
	Tombstoned     int64  `json:"tombstoned"`
	Revived        int64  `json:"revived"`
	Deleted        int64  `json:"deleted"`
	DeletedBytes   int64  `json:"deleted_bytes"`
	BytesReclaimed int64  `json:"bytes_reclaimed"`
}

// Done reports whether the job has reached a final state.
func (j Job) Done() bool {
	switch j.State {
	case JobSucceeded, JobFailed, JobCanceled, JobInterrupted:
		return true
	}
	return false
}

// Progress of a job in bytes.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// VerifyResult is what a verification found.
type VerifyResult struct {
	OK            bool  `json:"ok"`
	ChunksChecked int64 `json:"chunks_checked"`
	BytesChecked  int64 `json:"bytes_checked"`
	Corrupt       int64 `json:"corrupt"`
	Missing       int64 `json:"missing"`
	// Repaired counts damaged copies replaced from a good replica while
	// the verification ran.
	Repaired int64 `json:"repaired"`
	// RestorePoints counts the restore points a verification of all of
	// them checked.
	RestorePoints int      `json:"restore_points,omitempty"`
	Fingerprint   string   `json:"fingerprint"`
	Errors        []string `json:"errors,omitempty"`
}

// WrappedKey is a tenant's chunk-key secret sealed under the master key.
type WrappedKey struct {
	Tenant  string      `json:"tenant"`
	KeyID   chunk.KeyID `json:"key_id"`
	Wrapped []byte      `json:"wrapped"`
	Created time.Time   `json:"created"`
}
