// Package plugins declares what Cairn needs from the systems it protects.
//
// A Source lists protectable objects and, for one object, opens a consistent
// point-in-time view (a Snapshot) of its disks. A Disk is read at random and
// reports which extents hold data: the allocated ones for a full backup, or
// the ones changed since a change token for an incremental. A Target creates
// disks to restore into. Plugins know nothing of the cluster or the appliance;
// each states its change tracking honestly in Changes.Method.
package plugins

import (
	"context"
	"errors"
	"io"
)

// Errors shared by plugins.
var (
	ErrNotFound    = errors.New("object not found")
	ErrUnsupported = errors.New("not supported by this plugin")
	ErrExists      = errors.New("target already exists")
	ErrInvalid     = errors.New("invalid configuration")
)

// Extent is a byte range of a disk.
type Extent struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Object is something a source can protect: a VM, a volume, an image file.
type Object struct {
	Name  string            `json:"name"`
	Kind  string            `json:"kind"`
	Size  int64             `json:"size"` // sum of disk capacities
	Disks int               `json:"disks"`
	Info  map[string]string `json:"info,omitempty"`
}

// Source is a system Cairn backs up from.
//
// Contract: Objects lists what can be protected; Open returns a Snapshot of
// one object that stays consistent until Close, or ErrNotFound. A Snapshot's
// Close removes whatever the plugin created (snapshots, bitmaps, exports)
// whatever happened before, and is safe to call more than once.
type Source interface {
	Objects(ctx context.Context) ([]Object, error)
	Open(ctx context.Context, object string, opts OpenOptions) (Snapshot, error)
}

// OpenOptions carries what the caller knows about a run.
type OpenOptions struct {
	// ChangedExtents, when not nil, is the caller's own list of changed byte
	// ranges for a single-disk object (the file plugin's --changed-extents),
	// relative to the base the caller will pass to Changes; the plugin cannot
	// check that, so the caller vouches for it. A non-nil empty list means
	// nothing changed (ParseExtents returns one for a list without extents).
	// Plugins that cannot use it return ErrUnsupported.
	ChangedExtents []Extent
}

// Snapshot is a point-in-time view of one object.
type Snapshot interface {
	Disks() []Disk
	// Consistency says how the view was taken: "crash-consistent",
	// "application-consistent" or "none" (a live file read in place).
	Consistency() string
	Close(ctx context.Context) error
}

// Disk is one disk of a Snapshot. ReadAt reads the point-in-time view and is
// safe for concurrent use; a short read only happens at the end of the disk.
type Disk interface {
	io.ReaderAt
	// Key names the disk stably across backups of the object ("disk0",
	// "scsi0:1"), so an incremental finds its base.
	Key() string
	Capacity() int64
	// Changes reports what to read. base is the disk as the previous restore
	// point recorded it, or nil for a full backup.
	Changes(ctx context.Context, base *Base) (*Changes, error)
}

// Base is what the previous restore point recorded about a disk.
type Base struct {
	Capacity    int64
	ChangeToken string
}

// Changes lists the extents to read for one backup of a disk.
type Changes struct {
	// Extents are sorted, do not overlap, and lie within the disk.
	Extents []Extent
	// Delta is true when blocks outside Extents are unchanged since the base;
	// false when blocks outside Extents are zero (a full read of the
	// allocated extents).
	Delta bool
	// Method names how the extents were found: "allocated" (a full read of
	// the allocated extents), "full" (every byte), "extent-list" (supplied by
	// the caller), "cbt", "rct", "dirty-bitmap", "thin-delta", or
	// "hash-compare" (a full read compared against the base's index).
	Method string
	// Token is the change token to record for the next incremental; empty
	// when the plugin has no change tracking of its own.
	Token string
	// Note is a message for the job, such as why a full read replaced an
	// incremental ("dirty bitmap missing: full read").
	Note string
}

// Target is a system Cairn restores into.
type Target interface {
	// Create makes a new disk of the given capacity to restore into.
	Create(ctx context.Context, spec DiskSpec) (Writer, error)
}

// DiskSpec describes a disk to restore.
type DiskSpec struct {
	Key      string
	Capacity int64
}

// Writer receives a restored disk. WriteAt is safe for concurrent use on
// disjoint ranges; a range written again holds the last write, and a write
// outside [0, Capacity) fails. Ranges never written read back as zeros once
// Commit returns. Commit makes the disk visible; Abort removes it. Abort after
// Commit does nothing (so a deferred Abort is safe), and Commit after Abort
// fails.
type Writer interface {
	io.WriterAt
	Commit(ctx context.Context) error
	Abort(ctx context.Context) error
}
