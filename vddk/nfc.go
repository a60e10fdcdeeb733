package vddk

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// NFC exports the snapshot through an HttpNfcLease and decodes the disk's
// streamOptimized VMDK into an unlinked sparse spool file in SpoolDir (the
// system's temporary directory when empty), which ReadAt then serves. The
// whole disk is read at Open, so it suits full backups only.
type NFC struct {
	Client   *vim25.Client
	SpoolDir string
}

// Name is "nfc".
func (n *NFC) Name() string { return "nfc" }

// Open exports the snapshot, downloads and decodes the disk, and completes
// the lease (or aborts it on failure).
func (n *NFC) Open(ctx context.Context, ref DiskRef) (d Disk, err error) {
	b, ok := ref.Backing.(types.BaseVirtualDeviceFileBackingInfo)
	if !ok {
		return nil, fmt.Errorf("nfc export of disk %d: backing %T has no file: %w", ref.DeviceKey, ref.Backing, ErrUnsupportedBacking)
	}
	name := path.Base(b.GetVirtualDeviceFileBackingInfo().FileName)
	res, err := methods.ExportSnapshot(ctx, n.Client, &types.ExportSnapshot{This: ref.Snapshot})
	if err != nil {
		return nil, fmt.Errorf("nfc export of %s: %w", name, err)
	}
	lease := nfc.NewLease(n.Client, res.Returnval)
	defer func() {
		if err != nil {
			_ = lease.Abort(context.WithoutCancel(ctx), &types.LocalizedMethodFault{LocalizedMessage: err.Error()})
		}
	}()
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("nfc export of %s: lease: %w", name, err)
	}
	var item *nfc.FileItem
	for i := range info.Items {
		if info.Items[i].Path == name {
			item = &info.Items[i]
		}
	}
	if item == nil {
		return nil, fmt.Errorf("nfc export of %s: the lease offers no such disk", name)
	}
	upd := lease.StartUpdater(ctx, info)
	defer upd.Done()
	rc, _, err := n.Client.Download(ctx, item.URL, &soap.DefaultDownload)
	if err != nil {
		return nil, fmt.Errorf("nfc export of %s: %w", name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(n.SpoolDir, "cairn-nfc-")
	if err != nil {
		return nil, fmt.Errorf("nfc export of %s: spool: %w", name, err)
	}
	// Unlinked at once, so a crash leaves nothing behind.
	os.Remove(f.Name())
	size, err := DecodeStream(rc, f)
	if err == nil && size < ref.Capacity {
		err = fmt.Errorf("stream holds %d bytes, the disk %d", size, ref.Capacity)
	}
	if err == nil {
		err = f.Truncate(ref.Capacity)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("nfc export of %s: %w", name, err)
	}
	if err := lease.Complete(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("nfc export of %s: complete lease: %w", name, err)
	}
	return &spoolDisk{f: f, size: ref.Capacity}, nil
}

type spoolDisk struct {
	f    *os.File
	size int64
}

func (d *spoolDisk) Size() int64  { return d.size }
func (d *spoolDisk) Close() error { return d.f.Close() }

func (d *spoolDisk) ReadAt(p []byte, off int64) (int, error) {
	want, eof, err := readRange(p, off, d.size)
	if err != nil {
		return 0, err
	}
	if len(want) == 0 {
		return 0, io.EOF
	}
	n, err := d.f.ReadAt(want, off)
	if err != nil {
		return n, err
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}
