package kvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/nbd"
)

// BitmapPrefix starts the name of every bitmap the plugin makes; bitmaps
// with other names are never touched.
const BitmapPrefix = "cairn-"

// imageDiskKey is the key of an image's only disk.
const imageDiskKey = "disk0"

// ImageSource protects one qcow2 image that no VM is running.
type ImageSource struct {
	path  string
	tools Tools
	now   func() time.Time
}

var _ plugins.Source = (*ImageSource)(nil)

// NewImage returns a source for the qcow2 image at path. Its one object is
// named after the path's last element.
func NewImage(path string, tools Tools) *ImageSource {
	return &ImageSource{path: path, tools: tools, now: time.Now}
}

func (s *ImageSource) name() string { return filepath.Base(s.path) }

// Objects lists the image.
func (s *ImageSource) Objects(ctx context.Context) ([]plugins.Object, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, err
	}
	return []plugins.Object{{
		Name: s.name(), Kind: "qcow2-image", Size: info.VirtualSize, Disks: 1,
		Info: map[string]string{"path": s.path},
	}}, nil
}

func (s *ImageSource) info(ctx context.Context) (*imageInfo, error) {
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", s.path, plugins.ErrNotFound)
	}
	info, err := s.tools.info(ctx, s.path)
	if err != nil {
		return nil, fmt.Errorf("image %s (is a VM running it? back it up through --qmp): %w", s.path, err)
	}
	if info.Format != "qcow2" {
		return nil, fmt.Errorf("image %s is %s; persistent dirty bitmaps need qcow2: %w", s.path, info.Format, plugins.ErrUnsupported)
	}
	if info.FormatSpecific.Data.Corrupt {
		return nil, fmt.Errorf("image %s is marked corrupt; run qemu-img check", s.path)
	}
	return info, nil
}

// newBitmapName names the bitmap that starts recording at a new point in
// time: sortable by time, unique by its random suffix.
func newBitmapName(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return BitmapPrefix + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}

// Open adds the new point's bitmap, then exports the image read-only with
// every usable bitmap of the plugin through qemu-nbd.
func (s *ImageSource) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if object != s.name() {
		return nil, fmt.Errorf("open %q: source %s holds only %q: %w", object, s.path, s.name(), plugins.ErrNotFound)
	}
	if opts.ChangedExtents != nil {
		return nil, fmt.Errorf("open %s: the kvm plugin finds changes with dirty bitmaps, not an extent list: %w", s.path, plugins.ErrUnsupported)
	}
	info, err := s.info(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	bitmaps, exported := map[string]bitmap{}, map[string]string{}
	args := []string{"--read-only", "--format=qcow2", "--export-name=" + imageDiskKey}
	for _, b := range info.FormatSpecific.Data.Bitmaps {
		if !strings.HasPrefix(b.Name, BitmapPrefix) {
			continue
		}
		bitmaps[b.Name] = b
		if b.usable() {
			exported[b.Name] = b.Name
			args = append(args, "--bitmap="+b.Name)
		}
	}
	name := newBitmapName(s.now())
	if _, err := s.tools.qemuImg(ctx, "bitmap", "--add", s.path, name); err != nil {
		// qemu-img may have stored the bitmap before failing.
		_, _ = s.tools.qemuImg(context.WithoutCancel(ctx), "bitmap", "--remove", s.path, name)
		return nil, fmt.Errorf("open %s: create dirty bitmap %s: %w", s.path, name, err)
	}
	srv, c, err := s.tools.serve(ctx, nbd.Options{Export: imageDiskKey, MetaContexts: []string{nbd.ContextAllocation}},
		append(args, s.path)...)
	if err != nil {
		_, rerr := s.tools.qemuImg(context.WithoutCancel(ctx), "bitmap", "--remove", s.path, name)
		return nil, errors.Join(fmt.Errorf("open %s: export: %w", s.path, err), rerr)
	}
	if c.Size() != info.VirtualSize {
		c.Close()
		_ = srv.Stop()
		_, _ = s.tools.qemuImg(context.WithoutCancel(ctx), "bitmap", "--remove", s.path, name)
		return nil, fmt.Errorf("open %s: export of %d bytes, image of %d", s.path, c.Size(), info.VirtualSize)
	}
	d := &disk{key: imageDiskKey, client: c, srv: srv, export: imageDiskKey, token: name, bitmaps: bitmaps, exported: exported}
	return &imageSnapshot{src: s, disk: d}, nil
}

// imageSnapshot is an offline image exported for one backup.
type imageSnapshot struct {
	src    *ImageSource
	disk   *disk
	mu     sync.Mutex // serializes Close
	closed bool
	err    error
}

func (sn *imageSnapshot) Disks() []plugins.Disk { return []plugins.Disk{sn.disk} }

// Consistency is "none": the plugin takes no snapshot of an offline image
// and reads it in place, while qemu-nbd's image lock keeps any VM from
// starting on it.
func (sn *imageSnapshot) Consistency() string { return "none" }

// Close stops the export. After a backup whose changes were found and whose
// every read succeeded it keeps the new bitmap and the base's, and removes
// the plugin's other bitmaps; otherwise it removes the new bitmap.
func (sn *imageSnapshot) Close(ctx context.Context) error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return sn.err
	}
	sn.closed = true
	d := sn.disk
	errs := []error{d.close()}
	t, path := sn.src.tools, sn.src.path
	if !d.succeeded() {
		if _, err := t.qemuImg(ctx, "bitmap", "--remove", path, d.token); err != nil {
			errs = append(errs, fmt.Errorf("remove the unused bitmap: %w", err))
		}
	} else {
		for name := range d.bitmaps {
			if name == d.baseToken() {
				continue
			}
			if _, err := t.qemuImg(ctx, "bitmap", "--remove", path, name); err != nil {
				errs = append(errs, fmt.Errorf("remove the old bitmap: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		sn.err = fmt.Errorf("close the export of %s: %w", path, err)
	}
	return sn.err
}
