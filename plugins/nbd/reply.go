package nbd

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Bounds on chunks that carry no read data.
const (
	maxErrorChunk  = 4 + 2 + 4096 + 8
	maxStatusChunk = 4 + 8<<20 // a context ID and up to a million extents
)

// receive reads replies from r until it fails, completing calls.
func (c *Client) receive(r io.Reader) error {
	var h [20]byte
	for {
		if _, err := io.ReadFull(r, h[:4]); err != nil {
			return fmt.Errorf("nbd: read reply: %w", err)
		}
		switch m := binary.BigEndian.Uint32(h[:4]); m {
		case magicSimple:
			if _, err := io.ReadFull(r, h[4:16]); err != nil {
				return fmt.Errorf("nbd: read reply: %w", err)
			}
			if err := c.simple(r, binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint64(h[8:])); err != nil {
				return err
			}
		case magicStructured:
			if _, err := io.ReadFull(r, h[4:20]); err != nil {
				return fmt.Errorf("nbd: read reply: %w", err)
			}
			if !c.s.structured {
				return protocolf("structured reply without negotiating structured replies")
			}
			flags, typ := binary.BigEndian.Uint16(h[4:]), binary.BigEndian.Uint16(h[6:])
			handle, n := binary.BigEndian.Uint64(h[8:]), binary.BigEndian.Uint32(h[16:])
			if err := c.structuredChunk(r, flags, typ, handle, n); err != nil {
				return err
			}
		default:
			return protocolf("reply magic %#x", m)
		}
	}
}

// lookup returns the outstanding call with handle.
func (c *Client) lookup(handle uint64) (*call, error) {
	c.mu.Lock()
	cl := c.pending[handle]
	c.mu.Unlock()
	if cl == nil {
		return nil, protocolf("reply for handle %d, which no request is waiting for", handle)
	}
	return cl, nil
}

// finish completes cl.
func (c *Client) finish(handle uint64, cl *call) {
	c.mu.Lock()
	delete(c.pending, handle)
	c.mu.Unlock()
	close(cl.done)
}

func (c *Client) simple(r io.Reader, errno uint32, handle uint64) error {
	cl, err := c.lookup(handle)
	if err != nil {
		return err
	}
	switch {
	case errno != 0:
		cl.err = &Error{Errno: errno}
	case cl.cmd == cmdBlockStatus:
		return protocolf("simple reply without status to a block status request")
	case cl.cmd == cmdRead && c.s.structured:
		return protocolf("simple reply to a read after structured replies were negotiated")
	case cl.cmd == cmdRead:
		if _, err := io.ReadFull(r, cl.buf); err != nil {
			return fmt.Errorf("nbd: read data: %w", err)
		}
	}
	c.finish(handle, cl)
	return nil
}

func (c *Client) structuredChunk(r io.Reader, flags, typ uint16, handle uint64, n uint32) error {
	cl, err := c.lookup(handle)
	if err != nil {
		return err
	}
	switch {
	case typ == replyTypeNone:
		if n != 0 || flags&replyFlagDone == 0 {
			return protocolf("NBD_REPLY_TYPE_NONE with %d bytes, flags %#x", n, flags)
		}
	case typ&replyTypeErrorBitMask != 0:
		if err := errorChunk(r, cl, typ, n); err != nil {
			return err
		}
	case typ == replyTypeOffsetData:
		if err := dataChunk(r, cl, n); err != nil {
			return err
		}
	case typ == replyTypeOffsetHole:
		if err := holeChunk(r, cl, n); err != nil {
			return err
		}
	case typ == replyTypeBlockStatus:
		if err := c.statusChunk(r, cl, n); err != nil {
			return err
		}
	default:
		return protocolf("unknown reply chunk type %d", typ)
	}
	if flags&replyFlagDone == 0 {
		return nil
	}
	if cl.err == nil {
		switch cl.cmd {
		case cmdRead:
			var got int64
			for _, s := range cl.covered {
				got += s.n
			}
			if got != int64(cl.length) {
				return protocolf("read of %d bytes at %d answered with %d bytes", cl.length, cl.off, got)
			}
		case cmdBlockStatus:
			if !cl.gotStatus {
				return protocolf("block status at %d answered without the requested context", cl.off)
			}
		}
	}
	c.finish(handle, cl)
	return nil
}

func errorChunk(r io.Reader, cl *call, typ uint16, n uint32) error {
	if n < 6 || n > maxErrorChunk {
		return protocolf("error chunk of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("nbd: read error chunk: %w", err)
	}
	errno, mlen := binary.BigEndian.Uint32(b), uint32(binary.BigEndian.Uint16(b[4:]))
	if errno == 0 {
		return protocolf("error chunk without an error number")
	}
	want := 6 + mlen
	if typ == replyTypeErrorOffset {
		want += 8
	}
	if (typ == replyTypeError || typ == replyTypeErrorOffset) && n != want || n < 6+mlen {
		return protocolf("error chunk of %d bytes with a %d-byte message", n, mlen)
	}
	if typ == replyTypeErrorOffset {
		off := binary.BigEndian.Uint64(b[6+mlen:])
		if off < uint64(cl.off) || off >= uint64(cl.off)+uint64(cl.length) {
			return protocolf("error at offset %d outside the request at %d+%d", off, cl.off, cl.length)
		}
	}
	if cl.err == nil {
		cl.err = &Error{Errno: errno, Message: string(b[6 : 6+mlen])}
	}
	return nil
}

// claim checks that [off, off+n) lies in a read request and overlaps nothing
// already received, and records it; it returns the range relative to buf.
func claim(cl *call, off uint64, n uint64) (int64, error) {
	if cl.cmd != cmdRead {
		return 0, protocolf("read data in the reply to command %d", cl.cmd)
	}
	if n == 0 || off < uint64(cl.off) || off-uint64(cl.off) > uint64(cl.length) || n > uint64(cl.length)-(off-uint64(cl.off)) {
		return 0, protocolf("data %d+%d outside the read at %d+%d", off, n, cl.off, cl.length)
	}
	rel := int64(off - uint64(cl.off))
	for _, s := range cl.covered {
		if rel < s.off+s.n && s.off < rel+int64(n) {
			return 0, protocolf("data %d+%d received twice", off, n)
		}
	}
	cl.covered = append(cl.covered, span{rel, int64(n)})
	return rel, nil
}

func dataChunk(r io.Reader, cl *call, n uint32) error {
	if n <= 8 {
		return protocolf("data chunk of %d bytes", n)
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("nbd: read data chunk: %w", err)
	}
	dn := uint64(n - 8)
	rel, err := claim(cl, binary.BigEndian.Uint64(b[:]), dn)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(r, cl.buf[rel:rel+int64(dn)]); err != nil {
		return fmt.Errorf("nbd: read data chunk: %w", err)
	}
	return nil
}

func holeChunk(r io.Reader, cl *call, n uint32) error {
	if n != 12 {
		return protocolf("hole chunk of %d bytes", n)
	}
	var b [12]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("nbd: read hole chunk: %w", err)
	}
	hn := uint64(binary.BigEndian.Uint32(b[8:]))
	rel, err := claim(cl, binary.BigEndian.Uint64(b[:]), hn)
	if err != nil {
		return err
	}
	clear(cl.buf[rel : rel+int64(hn)])
	return nil
}

func (c *Client) statusChunk(r io.Reader, cl *call, n uint32) error {
	if cl.cmd != cmdBlockStatus {
		return protocolf("block status in the reply to command %d", cl.cmd)
	}
	if n < 12 || n > maxStatusChunk || (n-4)%8 != 0 {
		return protocolf("block status chunk of %d bytes", n)
	}
	// Read the extents one at a time: a server's claimed length never
	// decides how much memory is allocated at once.
	var b [8]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return fmt.Errorf("nbd: read block status: %w", err)
	}
	id := binary.BigEndian.Uint32(b[:4])
	known := false
	for _, v := range c.s.contexts {
		known = known || v == id
	}
	if !known {
		return protocolf("block status for context ID %d, which was not selected", id)
	}
	mine := id == cl.ctxID
	if mine && cl.gotStatus {
		return protocolf("block status for context ID %d sent twice", id)
	}
	cl.gotStatus = cl.gotStatus || mine
	off, end := cl.off, cl.off+int64(cl.length)
	for i := uint32(4); i < n; i += 8 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fmt.Errorf("nbd: read block status: %w", err)
		}
		l := int64(binary.BigEndian.Uint32(b[:]))
		if l == 0 {
			return protocolf("block status extent of length 0 at %d", off)
		}
		if !mine || off >= end {
			continue // another context's answer, or past the request
		}
		e := Extent{Offset: off, Length: min(l, end-off), Flags: binary.BigEndian.Uint32(b[4:])}
		if k := len(cl.extents); k > 0 && cl.extents[k-1].Flags == e.Flags {
			cl.extents[k-1].Length += e.Length
		} else {
			cl.extents = append(cl.extents, e)
		}
		off = e.End()
	}
	return nil
}
