package lvm

import (
	"bytes"
	"testing"
)

func FuzzParseDelta(f *testing.F) {
	f.Add([]byte(realDelta))
	f.Add([]byte(`<superblock data_block_size="128"><diff left="1" right="1"><same begin="0" length="5"/><same begin="12" length="1"/></diff></superblock>`))
	f.Add([]byte(`<superblock data_block_size="2097152"><diff left="9" right="10"><left_only begin="0" length="1"/></diff></superblock>`))
	f.Add([]byte(`<superblock data_block_size="128"><diff left="1" right="2"><different begin="1" length="0"/></diff></superblock>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDelta(bytes.NewReader(b))
		if err != nil {
			return
		}
		if d.BlockSize < minBlockSectors*sectorSize || d.BlockSize%(minBlockSectors*sectorSize) != 0 {
			t.Fatalf("accepted block size %d", d.BlockSize)
		}
		for _, rs := range [][]blockRange{d.Changed, d.Same} {
			for i, r := range rs {
				if r.Begin < 0 || r.Length <= 0 || r.end() > (1<<63-1)/d.BlockSize {
					t.Fatalf("accepted range %+v", r)
				}
				if i > 0 && r.Begin <= rs[i-1].end() {
					t.Fatalf("ranges %+v and %+v are not sorted and merged", rs[i-1], r)
				}
			}
			const capacity = 1 << 40
			ext := extents(rs, d.BlockSize, capacity)
			for i, e := range ext {
				if e.Length <= 0 || e.End() > capacity || (i > 0 && e.Offset < ext[i-1].End()) {
					t.Fatalf("extents %v are not valid on a %d-byte disk", ext, int64(capacity))
				}
			}
		}
	})
}

func FuzzParseVolumes(f *testing.F) {
	f.Add([]byte(realLVs))
	f.Add([]byte(`{"report":[{"lv":[]}]}`))
	f.Add([]byte(`{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_attr":"V","lv_size":"1","pool_lv":"p","thin_id":"1","origin":""}]}],"log":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vols, err := ParseVolumes(b)
		if err != nil {
			return
		}
		for _, v := range vols {
			if v.Name == "" || v.VG == "" || v.Size < 0 || v.ThinID < -1 {
				t.Fatalf("accepted %+v", v)
			}
		}
	})
}
