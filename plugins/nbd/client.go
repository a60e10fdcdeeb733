package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Client is one NBD connection in the transmission phase.
type Client struct {
	conn net.Conn
	s    *session

	wmu sync.Mutex // one request on the wire at a time

	mu      sync.Mutex
	pending map[uint64]*call
	next    uint64
	err     error // why the connection ended; nil while it works

	loopDone chan struct{}
}

// call is one outstanding request. The receive loop owns its fields until it
// closes done.
type call struct {
	cmd    uint16
	off    int64
	length uint32

	buf     []byte // read destination, len(buf) == length
	covered []span // ranges of buf the server filled

	ctxID     uint32 // the context a block status request wants
	gotStatus bool
	extents   []Extent

	err  error
	done chan struct{}
}

type span struct{ off, n int64 }

// Dial connects to an NBD server (network "unix" or "tcp") and negotiates
// opts.
func Dial(ctx context.Context, network, addr string, opts Options) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("nbd: dial %s: %w", addr, err)
	}
	return NewClient(ctx, conn, opts)
}

// NewClient negotiates opts on conn and starts the transmission phase. The
// client owns conn from then on, and closes it if the handshake fails.
func NewClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReaderSize(conn, 256<<10)
	s, err := negotiate(struct {
		io.Reader
		io.Writer
	}{br, conn}, opts)
	if !stop() || ctx.Err() != nil {
		conn.Close()
		return nil, fmt.Errorf("nbd: handshake: %w", context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{conn: conn, s: s, pending: map[uint64]*call{}, loopDone: make(chan struct{})}
	go c.run(br)
	return c, nil
}

// Size is the export's size in bytes.
func (c *Client) Size() int64 { return c.s.size }

// Flags are the export's transmission flags.
func (c *Client) Flags() uint16 { return c.s.flags }

// HasContext reports whether the server selected the metadata context.
func (c *Client) HasContext(name string) bool {
	_, ok := c.s.contexts[name]
	return ok
}

// Close disconnects (NBD_CMD_DISC) and waits for the connection to end.
// Requests still waiting fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	broken := c.err != nil
	c.mu.Unlock()
	if !broken {
		c.wmu.Lock()
		_, _ = c.conn.Write(header(cmdDisc, 0, 0, 0, 0))
		c.wmu.Unlock()
	}
	c.fail(ErrClosed)
	<-c.loopDone
	return nil
}

// fail ends the connection with err; the first reason wins. The receive
// loop then stops and releases every waiting request.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.conn.Close()
}

// run is the receive loop. Only it writes into a call, so calls are released
// once it has stopped, never while it might still fill a buffer.
func (c *Client) run(r io.Reader) {
	defer close(c.loopDone)
	c.fail(c.receive(r))
	c.mu.Lock()
	pending, err := c.pending, c.err
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	for _, cl := range pending {
		if cl.err == nil {
			cl.err = err
		}
		close(cl.done)
	}
}

func header(cmd uint16, flags uint16, handle uint64, off int64, n uint32) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint32(b[0:], magicRequest)
	binary.BigEndian.PutUint16(b[4:], flags)
	binary.BigEndian.PutUint16(b[6:], cmd)
	binary.BigEndian.PutUint64(b[8:], handle)
	binary.BigEndian.PutUint64(b[16:], uint64(off))
	binary.BigEndian.PutUint32(b[24:], n)
	return b
}

// start sends a request and returns its call; data is the write payload.
func (c *Client) start(cl *call, data []byte) (*call, error) {
	cl.done = make(chan struct{})
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.next++
	h := c.next
	c.pending[h] = cl
	c.mu.Unlock()

	c.wmu.Lock()
	_, err := c.conn.Write(header(cl.cmd, 0, h, cl.off, cl.length))
	if err == nil && len(data) > 0 {
		_, err = c.conn.Write(data)
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("nbd: send request: %w", err))
	}
	return cl, nil
}

// wait waits for cl, or for ctx (the reply is then discarded when it comes).
func wait(ctx context.Context, cl *call) error {
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReadAt reads len(p) bytes at off, splitting the range into pipelined
// requests of at most MaxPayload bytes. A read past the end of the export is
// short and returns io.EOF.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd: read at negative offset %d", off)
	}
	if off >= c.s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), c.s.size-off))
	var calls []*call
	var err error
	for i := 0; i < n && err == nil; i += MaxPayload {
		j := min(i+MaxPayload, n)
		var cl *call
		cl, err = c.start(&call{cmd: cmdRead, off: off + int64(i), length: uint32(j - i), buf: p[i:j]}, nil)
		if cl != nil {
			calls = append(calls, cl)
		}
	}
	for _, cl := range calls {
		if werr := wait(context.Background(), cl); werr != nil && err == nil {
			err = fmt.Errorf("nbd: read %d bytes at %d: %w", cl.length, cl.off, werr)
		}
	}
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// checkWrite fails unless [off, off+n) lies in a writable export.
func (c *Client) checkWrite(off, n int64) error {
	if c.s.flags&FlagReadOnly != 0 {
		return errors.New("nbd: the export is read-only")
	}
	if off < 0 || n < 0 || off > c.s.size || n > c.s.size-off {
		return fmt.Errorf("nbd: write of %d bytes at %d is outside the %d-byte export", n, off, c.s.size)
	}
	return nil
}

// WriteAt writes p at off in pipelined requests of at most MaxPayload bytes.
func (c *Client) WriteAt(p []byte, off int64) (int, error) {
	if err := c.checkWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	return c.pipeline(cmdWrite, p, off, int64(len(p)), MaxPayload)
}

// WriteZeroes makes [off, off+n) read as zeros, letting the server punch
// holes (NBD_CMD_WRITE_ZEROES without NO_HOLE).
func (c *Client) WriteZeroes(off, n int64) error {
	if err := c.checkWrite(off, n); err != nil {
		return err
	}
	if c.s.flags&FlagSendWriteZeros == 0 {
		_, err := c.WriteAt(make([]byte, n), off)
		return err
	}
	_, err := c.pipeline(cmdWriteZeroes, nil, off, n, 1<<30)
	return err
}

func (c *Client) pipeline(cmd uint16, p []byte, off, n int64, step int64) (int, error) {
	var calls []*call
	var err error
	for i := int64(0); i < n && err == nil; i += step {
		j := min(i+step, n)
		var data []byte
		if p != nil {
			data = p[i:j]
		}
		var cl *call
		cl, err = c.start(&call{cmd: cmd, off: off + i, length: uint32(j - i)}, data)
		if cl != nil {
			calls = append(calls, cl)
		}
	}
	for _, cl := range calls {
		if werr := wait(context.Background(), cl); werr != nil && err == nil {
			err = fmt.Errorf("nbd: write %d bytes at %d: %w", cl.length, cl.off, werr)
		}
	}
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Flush asks the server to make completed writes durable.
func (c *Client) Flush(ctx context.Context) error {
	if c.s.flags&FlagSendFlush == 0 {
		return nil
	}
	cl, err := c.start(&call{cmd: cmdFlush}, nil)
	if err == nil {
		err = wait(ctx, cl)
	}
	if err != nil {
		return fmt.Errorf("nbd: flush: %w", err)
	}
	return nil
}

// BlockStatus walks [off, off+length) (clipped to the export) in requests of
// at most MaxStatusSpan bytes and calls fn for each extent of the metadata
// context, in order, without gaps.
func (c *Client) BlockStatus(ctx context.Context, context string, off, length int64, fn func(Extent) error) error {
	id, ok := c.s.contexts[context]
	if !ok {
		return fmt.Errorf("nbd: block status of %q: %w", context, ErrNoContext)
	}
	if off < 0 || length < 0 {
		return fmt.Errorf("nbd: block status of negative range %d+%d", off, length)
	}
	end := min(off+length, c.s.size)
	for off < end {
		n := min(end-off, MaxStatusSpan)
		cl, err := c.start(&call{cmd: cmdBlockStatus, off: off, length: uint32(n), ctxID: id}, nil)
		if err == nil {
			err = wait(ctx, cl)
		}
		if err != nil {
			return fmt.Errorf("nbd: block status of %q at %d: %w", context, off, err)
		}
		for _, e := range cl.extents {
			if err := fn(e); err != nil {
				return err
			}
			off = e.End()
		}
	}
	return nil
}
