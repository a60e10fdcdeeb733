//go:build vddk && cgo

package libvix

/*
#cgo CFLAGS: -I/usr/local/vmware-vix-disklib-distrib/include
#cgo LDFLAGS: -L/usr/local/vmware-vix-disklib-distrib/lib64 -lvixDiskLib -ldl
#include <stdlib.h>
#include <string.h>
#include "vixDiskLib.h"

// The credentials sit in a union, which cgo cannot reach; these helpers do.
static void cairn_set_uid_creds(VixDiskLibConnectParams *p, char *user, char *password) {
	p->credType = VIXDISKLIB_CRED_UID;
	p->creds.uid.userName = user;
	p->creds.uid.password = password;
}

static VixError cairn_init(const char *libDir, const char *configFile) {
	return VixDiskLib_InitEx(VIXDISKLIB_VERSION_MAJOR, VIXDISKLIB_VERSION_MINOR,
		NULL, NULL, NULL, libDir, configFile);
}

static VixDiskLibSectorType cairn_capacity(VixDiskLibInfo *info) { return info->capacity; }
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/vddk"
)

// fileName returns the "[datastore] path.vmdk" VDDK opens for the disk.
func fileName(ref vddk.DiskRef) string {
	b, ok := ref.Backing.(types.BaseVirtualDeviceFileBackingInfo)
	if !ok {
		return ""
	}
	return b.GetVirtualDeviceFileBackingInfo().FileName
}

const sectorSize = C.VIXDISKLIB_SECTOR_SIZE

// LibVix is the libvixDiskLib transport.
type LibVix struct{ cfg Config }

var (
	initOnce sync.Once
	initErr  error
)

// Built reports whether the binding is compiled in.
func Built() bool { return true }

// vixError turns a VixError into a Go error with VDDK's text.
func vixError(what string, code C.VixError) error {
	if code == C.VIX_OK {
		return nil
	}
	msg := C.VixDiskLib_GetErrorText(code, nil)
	defer C.VixDiskLib_FreeErrorText(msg)
	return fmt.Errorf("%s: %s (vix error %d)", what, C.GoString(msg), uint64(code))
}

func (l *LibVix) init() error {
	initOnce.Do(func() {
		var libDir, cfgFile *C.char
		if l.cfg.LibDir != "" {
			libDir = C.CString(l.cfg.LibDir)
			defer C.free(unsafe.Pointer(libDir))
		}
		if l.cfg.ConfigFile != "" {
			cfgFile = C.CString(l.cfg.ConfigFile)
			defer C.free(unsafe.Pointer(cfgFile))
		}
		initErr = vixError("VixDiskLib_InitEx", C.cairn_init(libDir, cfgFile))
	})
	return initErr
}

// Exit releases VDDK; call it once when the process no longer reads disks.
func Exit() { C.VixDiskLib_Exit() }

// Open connects to the snapshot read-only and opens the disk.
func (l *LibVix) Open(ctx context.Context, ref vddk.DiskRef) (vddk.Disk, error) {
	if err := l.init(); err != nil {
		return nil, err
	}
	name := fileName(ref)
	if name == "" {
		return nil, fmt.Errorf("libvix open disk %d: backing has no file name: %w", ref.DeviceKey, vddk.ErrUnsupportedBacking)
	}
	var cs []unsafe.Pointer
	str := func(s string) *C.char {
		p := C.CString(s)
		cs = append(cs, unsafe.Pointer(p))
		return p
	}
	defer func() {
		for _, p := range cs {
			C.free(p)
		}
	}()
	params := C.VixDiskLib_AllocateConnectParams()
	if params == nil {
		return nil, fmt.Errorf("libvix: VixDiskLib_AllocateConnectParams failed")
	}
	defer C.VixDiskLib_FreeConnectParams(params)
	params.vmxSpec = str("moref=" + ref.VM.Value)
	params.serverName = str(l.cfg.Server)
	params.thumbPrint = str(l.cfg.Thumbprint)
	params.port = C.uint32(l.cfg.Port)
	C.cairn_set_uid_creds(params, str(l.cfg.User), str(l.cfg.Password))

	identity := str(l.cfg.Identity)
	if err := vixError("VixDiskLib_PrepareForAccess", C.VixDiskLib_PrepareForAccess(params, identity)); err != nil {
		return nil, err
	}
	d := &disk{endParams: l.cfg, vm: ref.VM.Value, size: ref.Capacity, name: name}
	var transports *C.char
	if l.cfg.Transports != "" {
		transports = str(l.cfg.Transports)
	}
	err := vixError("VixDiskLib_ConnectEx", C.VixDiskLib_ConnectEx(params, C.Bool(1), str(ref.Snapshot.Value), transports, &d.conn))
	if err == nil {
		err = vixError("VixDiskLib_Open "+name, C.VixDiskLib_Open(d.conn, str(name), C.VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d.handle))
	}
	if err == nil {
		var info *C.VixDiskLibInfo
		if err = vixError("VixDiskLib_GetInfo", C.VixDiskLib_GetInfo(d.handle, &info)); err == nil {
			if got := int64(C.cairn_capacity(info)) * sectorSize; got < ref.Capacity {
				err = fmt.Errorf("libvix open %s: VDDK reports %d bytes, the disk %d", name, got, ref.Capacity)
			}
			C.VixDiskLib_FreeInfo(info)
		}
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// disk is an open VDDK handle. VDDK handles are not safe for concurrent
// use, so reads are serialised.
type disk struct {
	mu        sync.Mutex
	endParams Config // to end the access window at Close
	vm        string
	conn      C.VixDiskLibConnection
	handle    C.VixDiskLibHandle
	size      int64
	name      string
	closed    bool
}

func (d *disk) Size() int64 { return d.size }

// ReadAt reads whole 512-byte sectors, as VDDK requires, and copies out
// the requested bytes.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("libvix read %s: negative offset", d.name)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), d.size-off)]
	first := off / sectorSize
	last := (off + int64(len(want)) + sectorSize - 1) / sectorSize
	buf := C.malloc(C.size_t((last - first) * sectorSize))
	if buf == nil {
		return 0, fmt.Errorf("libvix read %s: out of memory", d.name)
	}
	defer C.free(buf)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, fmt.Errorf("libvix read %s: disk closed", d.name)
	}
	if err := vixError("VixDiskLib_Read "+d.name, C.VixDiskLib_Read(d.handle, C.VixDiskLibSectorType(first),
		C.VixDiskLibSectorType(last-first), (*C.uint8)(buf))); err != nil {
		return 0, err
	}
	src := unsafe.Slice((*byte)(buf), (last-first)*sectorSize)
	n := copy(want, src[off-first*sectorSize:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.close()
}

// close closes the handle, disconnects and ends the access window.
func (d *disk) close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.handle != nil {
		errs = append(errs, vixError("VixDiskLib_Close", C.VixDiskLib_Close(d.handle)))
	}
	if d.conn != nil {
		errs = append(errs, vixError("VixDiskLib_Disconnect", C.VixDiskLib_Disconnect(d.conn)))
	}
	errs = append(errs, endAccess(d.endParams, d.vm))
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// endAccess ends the PrepareForAccess window with fresh connect params.
func endAccess(cfg Config, vm string) error {
	params := C.VixDiskLib_AllocateConnectParams()
	if params == nil {
		return fmt.Errorf("libvix: VixDiskLib_AllocateConnectParams failed")
	}
	defer C.VixDiskLib_FreeConnectParams(params)
	var cs []unsafe.Pointer
	str := func(s string) *C.char {
		p := C.CString(s)
		cs = append(cs, unsafe.Pointer(p))
		return p
	}
	defer func() {
		for _, p := range cs {
			C.free(p)
		}
	}()
	params.vmxSpec = str("moref=" + vm)
	params.serverName = str(cfg.Server)
	params.thumbPrint = str(cfg.Thumbprint)
	params.port = C.uint32(cfg.Port)
	C.cairn_set_uid_creds(params, str(cfg.User), str(cfg.Password))
	return vixError("VixDiskLib_EndAccess", C.VixDiskLib_EndAccess(params, str(cfg.Identity)))
}
