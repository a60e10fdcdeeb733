package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/vddk"
)

// Change methods this plugin reports.
const (
	MethodCBT       = "cbt"
	MethodAllocated = "allocated"
	MethodFull      = "full"
)

// maxPages bounds QueryChangedDiskAreas calls for one disk, against a
// server that never reaches the capacity.
const maxPages = 1 << 20

func removeTask(ctx context.Context, vm *object.VirtualMachine, req types.RemoveSnapshot_Task) (*object.Task, error) {
	res, err := methods.RemoveSnapshot_Task(ctx, vm.Client(), &req)
	if err != nil {
		return nil, err
	}
	return object.NewTask(vm.Client(), res.Returnval), nil
}

// disk is one disk of a backup snapshot.
type disk struct {
	snap     *snapshot
	info     diskInfo
	ref      vddk.DiskRef
	r        vddk.Disk
	changeID string
}

func (d *disk) Key() string     { return d.info.key }
func (d *disk) Capacity() int64 { return d.info.capacity }

// ReadAt reads the snapshot's disk through the transport.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read disk %s at %d: negative offset", d.info.key, off)
	}
	n, err := d.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read disk %s of %s: %w", d.info.key, d.snap.name, err)
	}
	return n, err
}

// Changes pages QueryChangedDiskAreas; see the package doc for when the
// read is a delta and when a full read.
func (d *disk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	notes := d.snap.takeNotes()
	done := func(ch *plugins.Changes, err error) (*plugins.Changes, error) {
		if ch != nil {
			ch.Token = d.changeID
			if ch.Note != "" {
				notes = append(notes, ch.Note)
			}
			ch.Note = strings.Join(notes, "; ")
		}
		return ch, err
	}
	if d.changeID == "" {
		// No change tracking on this disk (an RDM in physical mode, or CBT
		// not yet effective): read everything.
		return done(d.whole(fmt.Sprintf("disk %s has no changeId: full read", d.info.key)), nil)
	}
	if base != nil {
		var why string
		switch {
		case base.ChangeToken == "":
			why = "the base restore point has no changeId"
		case base.Capacity != d.info.capacity:
			why = fmt.Sprintf("the disk's capacity changed from %d to %d bytes", base.Capacity, d.info.capacity)
		default:
			ext, err := d.changed(ctx, base.ChangeToken)
			if err == nil {
				return done(&plugins.Changes{Extents: ext, Delta: true, Method: MethodCBT}, nil)
			}
			var ref *refusedError
			if !errors.As(err, &ref) {
				return nil, err
			}
			why = fmt.Sprintf("vSphere refused the base changeId (CBT was reset?): %v", ref.err)
		}
		notes = append(notes, fmt.Sprintf("disk %s: %s: full read of the allocated areas", d.info.key, why))
	}
	ext, err := d.changed(ctx, "*")
	if ref := (*refusedError)(nil); errors.As(err, &ref) {
		return done(d.whole(fmt.Sprintf("disk %s: vSphere lists no allocated areas (%v): full read", d.info.key, ref.err)), nil)
	}
	if err != nil {
		return nil, err
	}
	return done(&plugins.Changes{Extents: ext, Method: MethodAllocated}, nil)
}

func (d *disk) whole(note string) *plugins.Changes {
	ext := []plugins.Extent{}
	if d.info.capacity > 0 {
		ext = append(ext, plugins.Extent{Offset: 0, Length: d.info.capacity})
	}
	return &plugins.Changes{Extents: ext, Method: MethodFull, Note: note}
}

// refusedError is a first QueryChangedDiskAreas call that vSphere refused
// with a fault about the request itself (FileFault, invalid argument): the
// changeId is not usable, so a full read replaces it. Later pages failing,
// or any transport or session error, fail the backup.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return "changeId refused: " + e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// changed pages QueryChangedDiskAreas from changeID ("*" for allocated).
func (d *disk) changed(ctx context.Context, changeID string) ([]plugins.Extent, error) {
	capacity := d.info.capacity
	var out []plugins.Extent
	off := int64(0)
	for page := 0; off < capacity; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("query changed areas of disk %s: more than %d pages", d.info.key, maxPages)
		}
		req := types.QueryChangedDiskAreas{This: d.ref.VM, Snapshot: &d.ref.Snapshot, DeviceKey: d.ref.DeviceKey,
			StartOffset: off, ChangeId: changeID}
		res, err := methods.QueryChangedDiskAreas(ctx, d.snap.c.vim(), &req)
		if err != nil {
			if page == 0 && refusal(err) {
				return nil, &refusedError{err}
			}
			return nil, fmt.Errorf("query changed areas of disk %s at offset %d (page %d): %w", d.info.key, off, page+1, err)
		}
		var next int64
		if out, next, err = appendChangeInfo(out, res.Returnval, off, capacity); err != nil {
			return nil, fmt.Errorf("query changed areas of disk %s: %w", d.info.key, err)
		}
		off = next
	}
	return plugins.NormalizeExtents(out, capacity)
}

// refusal reports whether err is a fault about the request (the changeId),
// not about the session or the connection.
func refusal(err error) bool {
	if !soap.IsSoapFault(err) {
		return false
	}
	switch soap.ToSoapFault(err).VimFault().(type) {
	case types.FileFault, *types.FileFault, types.InvalidArgument, *types.InvalidArgument:
		return true
	}
	return false
}

// appendChangeInfo checks one QueryChangedDiskAreas reply for a query at
// off and appends its areas. The next query starts where the reply's
// coverage ends: StartOffset + Length (not off plus that).
func appendChangeInfo(out []plugins.Extent, info types.DiskChangeInfo, off, capacity int64) ([]plugins.Extent, int64, error) {
	if off < 0 || info.StartOffset != off || info.Length <= 0 || info.Length > capacity-info.StartOffset {
		return nil, 0, fmt.Errorf("reply covers [%d, +%d) for a query at %d of a %d-byte disk", info.StartOffset, info.Length, off, capacity)
	}
	end := info.StartOffset + info.Length
	for _, a := range info.ChangedArea {
		if a.Start < info.StartOffset || a.Length <= 0 || a.Length > end-a.Start {
			return nil, 0, fmt.Errorf("changed area [%d, +%d) lies outside the reply's coverage [%d, %d)", a.Start, a.Length, info.StartOffset, end)
		}
		out = append(out, plugins.Extent{Offset: a.Start, Length: a.Length})
	}
	return out, end, nil
}
