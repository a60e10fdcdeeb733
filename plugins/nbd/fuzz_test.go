package nbd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

func be(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		if s, ok := v.(string); ok {
			b.WriteString(s)
			continue
		}
		_ = binary.Write(&b, binary.BigEndian, v)
	}
	return b.Bytes()
}

func chunk(flags, typ uint16, handle uint64, payload []byte) []byte {
	return append(be(uint32(magicStructured), flags, typ, handle, uint32(len(payload))), payload...)
}

// fuzzClient has a read (handle 1, 4 KiB at 8 KiB), a block status (handle
// 2, context 1, 64 KiB at 0) and a write (handle 3) outstanding.
func fuzzClient() (*Client, map[uint64]*call) {
	a, b := net.Pipe()
	b.Close()
	c := &Client{conn: a, s: &session{size: 1 << 20, structured: true,
		contexts: map[string]uint32{ContextAllocation: 1, DirtyBitmapContext("b"): 2}}, loopDone: make(chan struct{})}
	calls := map[uint64]*call{
		1: {cmd: cmdRead, off: 8192, length: 4096, buf: make([]byte, 4096), done: make(chan struct{})},
		2: {cmd: cmdBlockStatus, off: 0, length: 65536, ctxID: 1, done: make(chan struct{})},
		3: {cmd: cmdWrite, off: 0, length: 10, done: make(chan struct{})},
	}
	c.pending = map[uint64]*call{}
	for h, cl := range calls {
		c.pending[h] = cl
	}
	return c, calls
}

func FuzzReplies(f *testing.F) {
	f.Add(bytes.Join([][]byte{
		chunk(0, replyTypeOffsetData, 1, append(be(uint64(8192)), make([]byte, 1000)...)),
		chunk(replyFlagDone, replyTypeOffsetHole, 1, be(uint64(9192), uint32(3096))),
		chunk(0, replyTypeBlockStatus, 2, be(uint32(2), uint32(65536), uint32(1))),
		chunk(replyFlagDone, replyTypeBlockStatus, 2, be(uint32(1), uint32(4096), uint32(0), uint32(100000), uint32(3))),
		be(uint32(magicSimple), uint32(0), uint64(3)),
	}, nil))
	f.Add(chunk(replyFlagDone, replyTypeErrorOffset, 1, be(uint32(5), uint16(3), "bad", uint64(8200))))
	f.Add(chunk(replyFlagDone, replyTypeError, 2, be(uint32(22), uint16(0))))
	f.Add(chunk(replyFlagDone, replyTypeNone, 3, nil))
	f.Add(be(uint32(magicSimple), uint32(5), uint64(1)))
	f.Add(chunk(replyFlagDone, replyTypeOffsetData, 1, append(be(uint64(8192)), make([]byte, 4096)...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, calls := fuzzClient()
		err := c.receive(bytes.NewReader(data))
		if err == nil {
			t.Fatal("receive returned without an error")
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrProtocol) {
			t.Fatalf("receive: %v is neither the end of input nor a protocol error", err)
		}
		for h, cl := range calls {
			select {
			case <-cl.done:
			default:
				continue
			}
			if cl.err != nil {
				continue
			}
			switch cl.cmd {
			case cmdRead:
				var n int64
				for _, s := range cl.covered {
					n += s.n
				}
				if n != int64(cl.length) {
					t.Fatalf("read %d completed with %d of %d bytes", h, n, cl.length)
				}
			case cmdBlockStatus:
				off := cl.off
				if len(cl.extents) == 0 {
					t.Fatal("block status completed without extents")
				}
				for _, e := range cl.extents {
					if e.Offset != off || e.Length <= 0 || e.End() > cl.off+int64(cl.length) {
						t.Fatalf("extent %+v after %d is outside %d+%d", e, off, cl.off, cl.length)
					}
					off = e.End()
				}
			}
		}
	})
}

func optReply(opt, typ uint32, data []byte) []byte {
	return append(be(uint64(magicOptReply), opt, typ, uint32(len(data))), data...)
}

func FuzzHandshake(f *testing.F) {
	greeting := be(uint64(magicNBD), uint64(magicOpt), uint16(flagFixedNewstyle|flagNoZeroes))
	f.Add(bytes.Join([][]byte{
		greeting,
		optReply(optStructuredReply, repAck, nil),
		optReply(optSetMetaContext, repMetaContext, be(uint32(1), ContextAllocation)),
		optReply(optSetMetaContext, repAck, nil),
		optReply(optGo, repInfo, be(uint16(3), uint32(1), uint32(4096), uint32(1<<25))),
		optReply(optGo, repInfo, be(uint16(infoExport), uint64(1<<30), uint16(FlagHasFlags|FlagReadOnly))),
		optReply(optGo, repAck, nil),
	}, nil))
	f.Add(bytes.Join([][]byte{greeting, optReply(optStructuredReply, repFlagError|1, []byte("no"))}, nil))
	f.Add(bytes.Join([][]byte{greeting, optReply(optStructuredReply, repAck, nil),
		optReply(optSetMetaContext, repFlagError|3, []byte("bad context"))}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), io.Discard}
		s, err := negotiate(rw, Options{Export: "disk", MetaContexts: []string{ContextAllocation, DirtyBitmapContext("b")}})
		if err != nil {
			return
		}
		if s.size < 0 || !s.structured {
			t.Fatalf("negotiated %+v", s)
		}
		ids := map[uint32]bool{}
		for _, id := range s.contexts {
			if ids[id] {
				t.Fatalf("contexts share an ID: %+v", s.contexts)
			}
			ids[id] = true
		}
	})
}
