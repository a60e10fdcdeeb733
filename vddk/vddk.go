// Package vddk reads the disks of vSphere VM snapshots. A Transport opens
// one disk of one snapshot (a DiskRef) as a Disk: a random-access reader
// of the disk's bytes at the time of the snapshot, safe for concurrent
// ReadAt, and closed when done.
//
// Transports:
//   - HTTPS (pure Go, the default): byte-range GETs of the disk's flat
//     extent through the datastore's /folder URL, with the session cookie.
//     It reads only a snapshot whose disk is a single flat extent (the base
//     disk of the VM's first snapshot) and refuses, with
//     ErrUnsupportedBacking, sparse and seSparse deltas, vSAN and vVol
//     objects and encrypted disks.
//   - NFC (pure Go): an export lease of the snapshot (HttpNfcLease), whose
//     streamOptimized VMDK stream is decoded into a local sparse spool
//     file. Sequential and whole-disk, so for full backups only.
//   - libvix (package vddk/libvix, build tag vddk): VMware's
//     libvixDiskLib over NBDSSL, HotAdd or SAN; without the tag it returns
//     ErrNotBuilt.
package vddk

import (
	"context"
	"errors"
	"io"

	"github.com/vmware/govmomi/vim25/types"
)

// Errors shared by transports.
var (
	// ErrUnsupportedBacking means the transport cannot read this kind of
	// disk; another transport may.
	ErrUnsupportedBacking = errors.New("disk backing not readable by this transport")
	// ErrNotBuilt is returned by the libvix transport in builds without
	// the vddk tag.
	ErrNotBuilt = errors.New("libvixDiskLib transport not built in (build with -tags vddk and VMware's VDDK)")
)

// DiskRef names one disk of one snapshot.
type DiskRef struct {
	VM        types.ManagedObjectReference
	Snapshot  types.ManagedObjectReference
	DeviceKey int32
	// Datacenter is the datacenter's inventory path ("DC0", "folder/DC1"),
	// used as the dcPath of datastore URLs.
	Datacenter string
	// DatastoreType is the summary.type of the disk's datastore ("VMFS",
	// "NFS", "vsan", "VVOL").
	DatastoreType string
	// Backing is the disk's backing in the snapshot's hardware.
	Backing  types.BaseVirtualDeviceBackingInfo
	Capacity int64
}

// Disk is an open disk of a snapshot. ReadAt returns io.EOF for a read
// that reaches past Size.
type Disk interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// Transport opens disks.
type Transport interface {
	Name() string
	Open(ctx context.Context, ref DiskRef) (Disk, error)
}

// readRange clips a read of len(p) bytes at off to a disk of size bytes;
// it returns the part to fill and whether the read runs past the end.
func readRange(p []byte, off, size int64) ([]byte, bool, error) {
	if off < 0 {
		return nil, false, errors.New("negative offset")
	}
	if off >= size {
		return nil, true, nil
	}
	if rest := size - off; int64(len(p)) > rest {
		return p[:rest], true, nil
	}
	return p, false, nil
}
