package vddk

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// requestTimeout bounds one ranged GET; ReadAt has no context.
const requestTimeout = 5 * time.Minute

// HTTPS reads flat extents through the datastore's /folder URL with
// byte ranges, authenticated by the client's session cookie. Valid only
// while the snapshot's disk is the flat base disk: the first snapshot of a
// VM without earlier snapshots, which freezes the base while the VM writes
// to a delta.
type HTTPS struct {
	Client *vim25.Client
}

// Name is "https".
func (h *HTTPS) Name() string { return "https" }

// Open checks the disk's backing and descriptor and returns a reader of
// its flat extent.
func (h *HTTPS) Open(ctx context.Context, ref DiskRef) (Disk, error) {
	b, err := flatBacking(ref)
	if err != nil {
		return nil, err
	}
	u, ext, err := h.FlatFile(ctx, ref.Datacenter, b.FileName)
	if err != nil {
		return nil, err
	}
	if ext.Sectors*512 < ref.Capacity {
		return nil, fmt.Errorf("open disk %s: extent holds %d bytes, the disk %d", b.FileName, ext.Sectors*512, ref.Capacity)
	}
	return &httpsDisk{h: h, u: u, name: b.FileName, base: ext.Offset * 512, size: ref.Capacity}, nil
}

// FlatFile reads the descriptor fileName ("[datastore] dir/disk.vmdk") and
// returns the /folder URL of its single flat extent, or why it has none.
func (h *HTTPS) FlatFile(ctx context.Context, dc, fileName string) (*url.URL, DescriptorExtent, error) {
	var p object.DatastorePath
	if !p.FromString(fileName) {
		return nil, DescriptorExtent{}, fmt.Errorf("disk %q: bad datastore path", fileName)
	}
	text, err := h.get(ctx, h.url(dc, p.Datastore, p.Path), "", maxDescriptor+1)
	if err != nil {
		return nil, DescriptorExtent{}, fmt.Errorf("disk %s: read descriptor: %w", fileName, err)
	}
	desc, err := ParseDescriptor(text)
	if err != nil {
		return nil, DescriptorExtent{}, fmt.Errorf("disk %s: %w", fileName, err)
	}
	e, err := desc.flatExtent()
	if err != nil {
		return nil, DescriptorExtent{}, fmt.Errorf("disk %s: %w", fileName, err)
	}
	if strings.ContainsAny(e.File, "/\\") || e.File == ".." {
		return nil, DescriptorExtent{}, fmt.Errorf("disk %s: extent file %q is outside the disk's folder", fileName, e.File)
	}
	return h.url(dc, p.Datastore, path.Join(path.Dir(p.Path), e.File)), e, nil
}

// flatBacking returns the backing of a disk the HTTPS transport can read.
func flatBacking(ref DiskRef) (*types.VirtualDiskFlatVer2BackingInfo, error) {
	switch t := strings.ToLower(ref.DatastoreType); t {
	case "vsan", "vvol":
		return nil, fmt.Errorf("open disk %d: %s datastores have no flat files: %w", ref.DeviceKey, ref.DatastoreType, ErrUnsupportedBacking)
	}
	switch b := ref.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		switch {
		case b.Parent != nil:
			return nil, fmt.Errorf("open disk %s: it is a delta of %s (the VM had snapshots before this one): %w",
				b.FileName, b.Parent.FileName, ErrUnsupportedBacking)
		case b.KeyId != nil:
			return nil, fmt.Errorf("open disk %s: it is encrypted: %w", b.FileName, ErrUnsupportedBacking)
		}
		return b, nil
	case *types.VirtualDiskSeSparseBackingInfo:
		return nil, fmt.Errorf("open disk %s: seSparse delta: %w", b.FileName, ErrUnsupportedBacking)
	case *types.VirtualDiskSparseVer2BackingInfo:
		return nil, fmt.Errorf("open disk %s: sparse disk: %w", b.FileName, ErrUnsupportedBacking)
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		return nil, fmt.Errorf("open disk %s: raw device mapping: %w", b.FileName, ErrUnsupportedBacking)
	case nil:
		return nil, fmt.Errorf("open disk %d: no backing", ref.DeviceKey)
	default:
		return nil, fmt.Errorf("open disk %d: backing %T: %w", ref.DeviceKey, b, ErrUnsupportedBacking)
	}
}

// url returns the /folder URL of a datastore file.
func (h *HTTPS) url(dc, ds, p string) *url.URL {
	u := *h.Client.URL()
	u.User = nil
	u.Path = "/folder/" + strings.TrimPrefix(p, "/")
	u.RawQuery = url.Values{"dcPath": {dc}, "dsName": {ds}}.Encode()
	return &u
}

// get fetches up to limit bytes of u, with an optional Range header.
func (h *HTTPS) get(ctx context.Context, u *url.URL, rng string, limit int64) ([]byte, error) {
	dl := &soap.Download{Method: http.MethodGet}
	if rng != "" {
		dl.Headers = map[string]string{"Range": rng}
	}
	res, err := h.Client.Client.DownloadRequest(ctx, u, dl)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if err := statusError(res, rng != ""); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// statusError turns a datastore reply's status into an error.
func statusError(res *http.Response, ranged bool) error {
	switch {
	case res.StatusCode == http.StatusPartialContent && ranged, res.StatusCode == http.StatusOK && !ranged:
		return nil
	case res.StatusCode == http.StatusOK:
		return fmt.Errorf("datastore ignored the byte range (status 200)")
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		return fmt.Errorf("datastore refused the session (%s): it expired or lacks Datastore.Browse", res.Status)
	case res.StatusCode == http.StatusNotFound:
		return fmt.Errorf("datastore file not found (%s)", res.Status)
	}
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 200))
	return fmt.Errorf("datastore replied %s: %s", res.Status, strings.TrimSpace(string(msg)))
}

type httpsDisk struct {
	h          *HTTPS
	u          *url.URL
	name       string
	base, size int64
}

func (d *httpsDisk) Size() int64  { return d.size }
func (d *httpsDisk) Close() error { return nil }

// ReadAt reads with one ranged GET. It does not retry: a failed read fails
// the backup rather than risk a torn one.
func (d *httpsDisk) ReadAt(p []byte, off int64) (int, error) {
	want, eof, err := readRange(p, off, d.size)
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", d.name, off, err)
	}
	if len(want) == 0 {
		return 0, io.EOF
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	start := d.base + off
	rng := fmt.Sprintf("bytes=%d-%d", start, start+int64(len(want))-1)
	res, err := d.h.Client.Client.DownloadRequest(ctx, d.u, &soap.Download{Method: http.MethodGet, Headers: map[string]string{"Range": rng}})
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", d.name, off, err)
	}
	defer res.Body.Close()
	if err := statusError(res, true); err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", d.name, off, err)
	}
	if cr := res.Header.Get("Content-Range"); cr != "" && !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", start)) {
		return 0, fmt.Errorf("read %s at %d: datastore answered range %q", d.name, off, cr)
	}
	n, err := io.ReadFull(res.Body, want)
	if err != nil {
		return n, fmt.Errorf("read %s at %d: %d of %d bytes: %w", d.name, off, n, len(want), err)
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}
