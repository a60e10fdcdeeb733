package meta

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index keys sort the way lists are read. Times are encoded as 12 bytes,
// seconds with the sign bit flipped and then nanoseconds, both big-endian,
// so byte order is time order for every time.Time.

const timeKeySize = 12

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// sourcePrefix selects every restore point of a source. Names never hold a
// zero byte (see ValidName), so the terminator cannot be confused.
func sourcePrefix(source string) []byte {
	return append([]byte(source), 0)
}

// objectPrefix selects every restore point of one object of a source. The
// object is length-prefixed because it may be any string.
func objectPrefix(source, object string) []byte {
	b := sourcePrefix(source)
	b = binary.AppendUvarint(b, uint64(len(object)))
	return append(b, object...)
}

// pointKey orders the restore points of one object by time, then ID.
func pointKey(rp RestorePoint) []byte {
	b := objectPrefix(rp.Source, rp.Object)
	b = appendTime(b, rp.Time)
	return append(b, rp.ID...)
}

// jobKey orders jobs by creation time, then ID.
func jobKey(j Job) []byte {
	b := make([]byte, 0, timeKeySize+len(j.ID))
	b = appendTime(b, j.Created)
	return append(b, j.ID...)
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil if there is none.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// scan calls fn with the value of each key under prefix, ascending, until fn
// returns false.
func scan(c *bolt.Cursor, prefix []byte, fn func(v []byte) bool) {
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !fn(v) {
			return
		}
	}
}

// scanReverse calls fn with the value of each key under prefix, descending,
// until fn returns false.
func scanReverse(c *bolt.Cursor, prefix []byte, fn func(v []byte) bool) {
	var k, v []byte
	end := prefixEnd(prefix)
	if end != nil {
		k, _ = c.Seek(end)
	}
	if end == nil || k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if !fn(v) {
			return
		}
	}
}
