package kvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/nbd"
	"github.com/cairnhq/cairn/plugins/nbd/qemunbd"
)

// disk is one exported disk of a snapshot, read over NBD.
type disk struct {
	key    string
	client *nbd.Client     // reads and base:allocation
	srv    *qemunbd.Server // qemu-nbd, for an image; nil for a VM's own server
	export string
	// dial opens another connection to the export, for a dirty bitmap's
	// context; nil means srv.dial.
	dial func(ctx context.Context, opts nbd.Options) (*nbd.Client, error)
	// token is the bitmap that records writes after this point in time.
	token string
	// bitmaps are the plugin's bitmaps found at Open; exported maps the
	// usable ones to the bitmap name the export offers for them.
	bitmaps  map[string]bitmap
	exported map[string]string

	mu         sync.Mutex
	changesOK  bool
	readFailed bool
	base       string // the base bitmap an incremental read
}

var _ plugins.Disk = (*disk)(nil)

func (d *disk) Key() string     { return d.key }
func (d *disk) Capacity() int64 { return d.client.Size() }

// ReadAt reads the exported point in time.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.client.ReadAt(p, off)
	if err != nil && err != io.EOF {
		d.mu.Lock()
		d.readFailed = true
		d.mu.Unlock()
		return n, fmt.Errorf("read disk %s: %w", d.key, err)
	}
	return n, err
}

// succeeded reports whether changes were found and every read worked.
func (d *disk) succeeded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changesOK && !d.readFailed
}

func (d *disk) baseToken() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.base
}

func (d *disk) close() error {
	d.client.Close()
	if d.srv != nil {
		return d.srv.Stop()
	}
	return nil
}

// Changes reads the dirty bitmap named by base.ChangeToken for an
// incremental, or the allocated extents for a full backup or when that
// bitmap cannot be trusted.
func (d *disk) Changes(ctx context.Context, base *plugins.Base) (*plugins.Changes, error) {
	if base == nil {
		return d.full(ctx, "")
	}
	tok := base.ChangeToken
	name, ok := d.exported[tok]
	switch {
	case base.Capacity != d.Capacity():
		return d.full(ctx, fmt.Sprintf("disk %s changed size since the base: full read", d.key))
	case tok == "":
		return d.full(ctx, fmt.Sprintf("the base of disk %s has no dirty bitmap: full read", d.key))
	case !ok:
		if b, known := d.bitmaps[tok]; known {
			return d.full(ctx, fmt.Sprintf("dirty bitmap %s of disk %s is inconsistent (flags %s): full read",
				tok, d.key, strings.Join(b.Flags, ",")))
		}
		return d.full(ctx, fmt.Sprintf("dirty bitmap %s of disk %s is missing: full read", tok, d.key))
	}
	dial := d.dial
	if dial == nil {
		dial = d.srv.Dial
	}
	ctxName := nbd.DirtyBitmapContext(name)
	c, err := dial(ctx, nbd.Options{Export: d.export, MetaContexts: []string{ctxName}})
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.key, err)
	}
	defer c.Close()
	if !c.HasContext(ctxName) {
		return d.full(ctx, fmt.Sprintf("the export of disk %s does not offer dirty bitmap %s: full read", d.key, tok))
	}
	ext, err := d.extents(ctx, c, ctxName, func(e nbd.Extent) bool { return e.Flags&nbd.StateDirty != 0 })
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.changesOK, d.base = true, tok
	d.mu.Unlock()
	return &plugins.Changes{Extents: ext, Delta: true, Method: "dirty-bitmap", Token: d.token}, nil
}

// full lists the extents that hold data (neither holes nor reading as
// zeros), with note saying why a full read was needed.
func (d *disk) full(ctx context.Context, note string) (*plugins.Changes, error) {
	ext, err := d.extents(ctx, d.client, nbd.ContextAllocation, func(e nbd.Extent) bool { return e.Flags&nbd.StateZero == 0 })
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.changesOK, d.base = true, ""
	d.mu.Unlock()
	return &plugins.Changes{Extents: ext, Method: "allocated", Token: d.token, Note: note}, nil
}

func (d *disk) extents(ctx context.Context, c *nbd.Client, context string, keep func(nbd.Extent) bool) ([]plugins.Extent, error) {
	ext := []plugins.Extent{}
	err := c.BlockStatus(ctx, context, 0, c.Size(), func(e nbd.Extent) error {
		if !keep(e) {
			return nil
		}
		if n := len(ext); n > 0 && ext[n-1].End() == e.Offset {
			ext[n-1].Length += e.Length
		} else {
			ext = append(ext, plugins.Extent{Offset: e.Offset, Length: e.Length})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, nbd.ErrProtocol) {
			return nil, fmt.Errorf("disk %s: the NBD server broke the protocol: %w", d.key, err)
		}
		return nil, fmt.Errorf("disk %s: %w", d.key, err)
	}
	return plugins.NormalizeExtents(ext, c.Size())
}
