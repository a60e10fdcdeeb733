package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/cluster/chunk"
)

const segExt = ".seg"

// segName names segment n so that names sort like numbers.
func segName(n uint64) string { return fmt.Sprintf("%012d%s", n, segExt) }

func (s *Local) segPath(n uint64) string { return filepath.Join(s.segDir, segName(n)) }

// listSegments returns the numbers of the segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || n == 0 || segName(n) != e.Name() {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// active is the segment being appended to; only the writer touches it.
type active struct {
	num  uint64
	f    *os.File
	size int64
}

// createSegment makes segment n holding only its file header, durably
// unless noSync.
func createSegment(dir string, n uint64, noSync bool) (*active, error) {
	path := filepath.Join(dir, segName(n))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt(encodeSegHeader(n), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	if !noSync {
		if err := datasync(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("create segment %s: %w", path, err)
		}
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &active{num: n, f: f, size: segHeaderSize}, nil
}

// pwritev writes bufs back to back at off with as few system calls as the
// kernel allows, without copying them.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			iov := bufs
			if len(iov) > 1024 { // IOV_MAX
				iov = iov[:1024]
			}
			n, err := unix.Pwritev(int(fd), iov, off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			if n == 0 {
				werr = io.ErrShortWrite
				return true
			}
			off += int64(n)
			for n > 0 {
				if n < len(bufs[0]) {
					bufs[0] = bufs[0][n:]
					break
				}
				n -= len(bufs[0])
				bufs = bufs[1:]
			}
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), serr)
	}
	return nil
}

// syncDir makes the creation or removal of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// readRecord reads the record at l from f and checks that it is chunk id,
// whole and undamaged. It returns the sealed chunk, in buf if buf is large
// enough and in a new buffer otherwise. Damage, including a record lying
// past the end of the file, wraps chunk.ErrCorrupt.
func readRecord(f *os.File, l loc, id chunk.ID, buf []byte) ([]byte, error) {
	n := recHeaderSize + int(l.size)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.ReadAt(buf, l.off); err != nil {
		if !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read segment %d at %d: %w", l.seg, l.off, err)
		}
		size := int64(-1)
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		return nil, fmt.Errorf("record at %d+%d lies past the end of segment %d (%d bytes); the index expects data the disk does not hold: %w",
			l.off, len(buf), l.seg, size, chunk.ErrCorrupt)
	}
	h, err := parseRecHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("segment %d at %d: %w", l.seg, l.off, err)
	}
	if h.id != id || h.size != l.size {
		return nil, fmt.Errorf("segment %d at %d holds chunk %s (%d bytes), index expects %s (%d bytes): %w",
			l.seg, l.off, h.id.Short(), h.size, id.Short(), l.size, chunk.ErrCorrupt)
	}
	sealed := buf[recHeaderSize:]
	if err := chunk.Check(sealed); err != nil {
		return nil, fmt.Errorf("segment %d at %d: %w", l.seg, l.off, err)
	}
	return sealed, nil
}
