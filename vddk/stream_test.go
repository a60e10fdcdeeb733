package vddk_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/vddk"
)

// encodeStream writes disk as a streamOptimized VMDK with 64 KiB grains,
// skipping zero grains, with a grain table marker, a footer and EOS, as
// VMware's export does.
func encodeStream(t *testing.T, disk []byte) []byte {
	t.Helper()
	const grain = 128 // sectors
	le := binary.LittleEndian
	var out bytes.Buffer
	hdr := make([]byte, 512)
	le.PutUint32(hdr, 0x564d444b)
	le.PutUint32(hdr[4:], 3)
	le.PutUint32(hdr[8:], 1|1<<16|1<<17)
	le.PutUint64(hdr[12:], uint64(len(disk)/512))
	le.PutUint64(hdr[20:], grain)
	le.PutUint64(hdr[64:], 2) // overhead: header + one descriptor sector
	le.PutUint16(hdr[77:], 1)
	out.Write(hdr)
	out.Write(make([]byte, 512))
	for off := 0; off < len(disk); off += grain * 512 {
		g := disk[off:min(off+grain*512, len(disk))]
		if bytes.Count(g, []byte{0}) == len(g) {
			continue
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(g)
		zw.Close()
		m := make([]byte, 12)
		le.PutUint64(m, uint64(off/512))
		le.PutUint32(m[8:], uint32(z.Len()))
		out.Write(m)
		out.Write(z.Bytes())
		if pad := (512 - (12+z.Len())%512) % 512; pad > 0 {
			out.Write(make([]byte, pad))
		}
	}
	meta := func(typ uint32, sectors uint64) {
		m := make([]byte, 512)
		le.PutUint64(m, sectors)
		le.PutUint32(m[12:], typ)
		out.Write(m)
		out.Write(make([]byte, sectors*512))
	}
	meta(1, 4) // grain table
	meta(3, 1) // footer
	meta(0, 0) // end of stream
	return out.Bytes()
}

func TestDecodeStream(t *testing.T) {
	disk := make([]byte, 1*mib+512*3)
	copy(disk[100:], "hello")
	copy(disk[700<<10:], bytes.Repeat([]byte{7}, 100<<10))
	copy(disk[len(disk)-10:], "last bytes")
	spool, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	size, err := vddk.DecodeStream(bytes.NewReader(encodeStream(t, disk)), spool)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(disk)) {
		t.Fatalf("capacity %d, want %d", size, len(disk))
	}
	spool.Truncate(size)
	got, _ := os.ReadFile(spool.Name())
	if !bytes.Equal(got, disk) {
		t.Error("decoded disk differs")
	}
	trunc := encodeStream(t, disk)
	if _, err := vddk.DecodeStream(bytes.NewReader(trunc[:len(trunc)-512]), spool); err == nil {
		t.Error("stream without its end marker decoded without error")
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func FuzzDecodeStream(f *testing.F) {
	f.Add([]byte("# Disk DescriptorFile\n"))
	disk := make([]byte, 256<<10)
	copy(disk[70000:], "data")
	var t testing.T
	f.Add(encodeStream(&t, disk))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = vddk.DecodeStream(bytes.NewReader(b), discard{})
	})
}
