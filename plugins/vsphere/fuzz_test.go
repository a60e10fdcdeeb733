package vsphere

import (
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/plugins"
)

func TestAppendChangeInfo(t *testing.T) {
	const c = 100
	tests := []struct {
		name string
		info types.DiskChangeInfo
		off  int64
		next int64
		ok   bool
	}{
		{"whole", types.DiskChangeInfo{StartOffset: 0, Length: c, ChangedArea: []types.DiskChangeExtent{{Start: 10, Length: 5}}}, 0, c, true},
		// The next offset is StartOffset+Length, not off plus it.
		{"second page", types.DiskChangeInfo{StartOffset: 40, Length: 30}, 40, 70, true},
		{"wrong start", types.DiskChangeInfo{StartOffset: 0, Length: 30}, 40, 0, false},
		{"no progress", types.DiskChangeInfo{StartOffset: 40, Length: 0}, 40, 0, false},
		{"past capacity", types.DiskChangeInfo{StartOffset: 40, Length: 61}, 40, 0, false},
		{"area outside", types.DiskChangeInfo{StartOffset: 0, Length: 50, ChangedArea: []types.DiskChangeExtent{{Start: 45, Length: 10}}}, 0, 0, false},
		{"negative area", types.DiskChangeInfo{StartOffset: 0, Length: 50, ChangedArea: []types.DiskChangeExtent{{Start: -5, Length: 10}}}, 0, 0, false},
	}
	for _, tt := range tests {
		_, next, err := appendChangeInfo(nil, tt.info, tt.off, c)
		if (err == nil) != tt.ok || next != tt.next {
			t.Errorf("%s: next %d, err %v; want %d, ok %v", tt.name, next, err, tt.next, tt.ok)
		}
	}
}

func FuzzAppendChangeInfo(f *testing.F) {
	f.Add(int64(0), int64(100), int64(10), int64(5), int64(0), int64(100))
	f.Add(int64(40), int64(30), int64(45), int64(10), int64(40), int64(100))
	f.Add(int64(-18), int64(28), int64(-18), int64(10), int64(-18), int64(100)) // once accepted
	f.Fuzz(func(t *testing.T, start, length, aStart, aLen, off, capacity int64) {
		if capacity < 0 {
			return
		}
		info := types.DiskChangeInfo{StartOffset: start, Length: length, ChangedArea: []types.DiskChangeExtent{{Start: aStart, Length: aLen}}}
		out, next, err := appendChangeInfo(nil, info, off, capacity)
		if err != nil {
			return
		}
		if next <= off || next > capacity {
			t.Fatalf("next %d after %d of %d", next, off, capacity)
		}
		if _, err := plugins.NormalizeExtents(out, capacity); err != nil {
			t.Fatalf("accepted areas that do not fit the disk: %v", err)
		}
	})
}

func FuzzParseVMConfig(f *testing.F) {
	f.Add([]byte(`{"name":"web","cpus":2,"memory_mb":1024,"controllers":[{"type":"pvscsi","bus":0,"key":1000}],"disks":[{"key":"scsi0:0","capacity":1048576,"controller_key":1000,"unit":0,"datastore":"ds"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseVMConfig(b)
		if err != nil {
			return
		}
		if c.Name == "" || len(c.Disks) == 0 || c.CPUs <= 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}
