package peer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

func testIDs(n int) []chunk.ID {
	ids := make([]chunk.ID, n)
	for i := range ids {
		ids[i][0], ids[i][31] = byte(i), byte(i>>8)|1
	}
	return ids
}

func FuzzDecodeIDs(f *testing.F) {
	f.Add(appendIDs(nil, testIDs(3)), 4)
	f.Add([]byte{1, 2, 3}, 4)
	f.Add(appendIDs(nil, testIDs(5)), 4)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		ids, err := decodeIDs(b, max)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(ids) > max || !bytes.Equal(appendIDs(nil, ids), b) {
			t.Fatalf("%d ids do not re-encode to the input", len(ids))
		}
	})
}

func FuzzDecodeBits(f *testing.F) {
	f.Add(encodeBits([]bool{true, false, true}), 3)
	f.Add([]byte{0xff}, 3)
	f.Add([]byte{}, 0)
	f.Add([]byte{1, 2}, 9)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		v, err := decodeBits(b, n)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(v) != n || !bytes.Equal(encodeBits(v), b) {
			t.Fatalf("bitmap of %d does not re-encode to the input", n)
		}
	})
}

func FuzzDecodePut(f *testing.F) {
	ids := testIDs(2)
	body := appendPut(appendPut(nil, ids[0], []byte("first sealed")), ids[1], nil)
	f.Add(body, 4)
	f.Add(body[:len(body)-3], 4)
	f.Add(body, 1)
	f.Add(append(ids[0][:], 0xff, 0xff, 0xff, 0xff), 4)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 0 {
			return // the server's limits are positive
		}
		got, sealed, err := decodePut(b, max)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(got) > max || len(got) != len(sealed) {
			t.Fatalf("%d ids, %d chunks, max %d", len(got), len(sealed), max)
		}
		var again []byte
		for i := range got {
			again = appendPut(again, got[i], sealed[i])
		}
		if !bytes.Equal(again, b) {
			t.Fatal("decoded chunks do not re-encode to the input")
		}
	})
}

func FuzzDecodeInfo(f *testing.F) {
	f.Add(appendInfo(nil, store.Info{Size: 123, LastRef: time.Unix(1700000000, 5)}))
	f.Add(appendInfo(nil, store.Info{}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := decodeInfo(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if info.Size < 0 || info.Size > chunk.MaxSealed {
			t.Fatalf("size %d accepted", info.Size)
		}
		if !bytes.Equal(appendInfo(nil, info), b) {
			t.Fatal("info does not re-encode to the input")
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	ids := testIDs(2)
	var s []byte
	s = appendRecord(s, kindChunk, ids[0], []byte("sealed bytes"))
	s = appendRecord(s, kindNotFound, ids[1], nil)
	s = appendRecord(s, kindCorrupt, ids[1], []byte("crc mismatch"))
	s = appendRecord(s, kindEnd, chunk.Zero, nil)
	f.Add(s)
	f.Add(s[:40])
	f.Add(appendRecord(nil, 9, ids[0], nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		var again []byte
		for {
			rec, err := readRecord(br, 1<<16)
			if err != nil {
				if !errors.Is(err, errMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither malformed nor a cut stream", err)
				}
				if !bytes.HasPrefix(b, again) {
					t.Fatal("records read so far do not re-encode to the input's start")
				}
				return
			}
			again = appendRecord(again, rec.kind, rec.id, rec.payload)
			if rec.kind == kindEnd {
				if !bytes.HasPrefix(b, again) {
					t.Fatal("records do not re-encode to the input")
				}
				return
			}
		}
	})
}
