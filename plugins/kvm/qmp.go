package kvm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// ErrQMP is wrapped by errors caused by a QMP peer that breaks the protocol.
var ErrQMP = errors.New("qmp protocol violation")

// QMPError is an error QEMU returned for a command.
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *QMPError) Error() string { return fmt.Sprintf("%s: %s", e.Class, e.Desc) }

// maxQMPLine bounds one QMP message; query-named-block-nodes of a VM with
// many disks stays far below it.
const maxQMPLine = 16 << 20

// qmpTimeout bounds a command when the caller's context has no deadline.
const qmpTimeout = 60 * time.Second

// qmp is a QMP connection: JSON objects, one a line, over a Unix socket. It
// runs one command at a time and skips asynchronous events.
type qmp struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// qmpMessage is any message QEMU sends.
type qmpMessage struct {
	Greeting json.RawMessage `json:"QMP"`
	Return   json.RawMessage `json:"return"`
	Error    *QMPError       `json:"error"`
	Event    string          `json:"event"`
	ID       json.RawMessage `json:"id"`
}

// parseQMP decodes one message and checks it is exactly one of a greeting,
// a command's return, a command's error, or an event.
func parseQMP(line []byte) (*qmpMessage, error) {
	var m qmpMessage
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQMP, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: more than one JSON value on a line", ErrQMP)
	}
	kinds := 0
	for _, present := range []bool{m.Greeting != nil, m.Return != nil, m.Error != nil, m.Event != ""} {
		if present {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, fmt.Errorf("%w: a message that is not exactly one of greeting, return, error or event", ErrQMP)
	}
	if m.Error != nil && m.Error.Class == "" {
		return nil, fmt.Errorf("%w: an error without a class", ErrQMP)
	}
	return &m, nil
}

// dialQMP connects, reads the greeting and leaves capabilities negotiation.
func dialQMP(ctx context.Context, path string) (*qmp, error) {
	conn, err := dialBusy(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("connect to QMP socket %s: %w", path, err)
	}
	q := &qmp{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	err = q.withDeadline(ctx, func() error {
		m, err := q.read()
		if err != nil {
			return err
		}
		if m.Greeting == nil {
			return fmt.Errorf("%w: no greeting", ErrQMP)
		}
		return nil
	})
	if err == nil {
		err = q.execute(ctx, "qmp_capabilities", nil, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP socket %s: %w", path, err)
	}
	return q, nil
}

// dialBusy connects to a Unix socket, retrying for a few seconds while it
// refuses: QEMU serves one QMP client at a time and keeps others waiting in
// a short backlog, so another tool's brief session refuses ours.
func dialBusy(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	deadline := time.Now().Add(3 * time.Second)
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil || time.Now().After(deadline) ||
			!(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN)) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (q *qmp) close() error { return q.conn.Close() }

func (q *qmp) withDeadline(ctx context.Context, f func() error) error {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(qmpTimeout)
	}
	_ = q.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = q.conn.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() {
		return context.Cause(ctx)
	}
	return err
}

func (q *qmp) read() (*qmpMessage, error) {
	var line []byte
	for {
		part, err := q.r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxQMPLine {
			return nil, fmt.Errorf("%w: a message longer than %d bytes", ErrQMP, maxQMPLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read QMP: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			line = line[:0]
			continue
		}
		return parseQMP(line)
	}
}

// execute runs cmd with args and decodes its return value into result (if
// not nil). A QEMU error is returned as a *QMPError.
func (q *qmp) execute(ctx context.Context, cmd string, args, result any) error {
	q.n++
	id := "cairn-" + strconv.Itoa(q.n)
	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	err = q.withDeadline(ctx, func() error {
		if _, err := q.conn.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("write QMP: %w", err)
		}
		for {
			m, err := q.read()
			if err != nil {
				return err
			}
			if m.Event != "" {
				continue
			}
			var got string
			if m.ID == nil || json.Unmarshal(m.ID, &got) != nil || got != id {
				return fmt.Errorf("%w: a reply with id %s while waiting for %s", ErrQMP, m.ID, id)
			}
			if m.Error != nil {
				return m.Error
			}
			if m.Return == nil {
				return fmt.Errorf("%w: a greeting in reply to a command", ErrQMP)
			}
			if result != nil {
				if err := json.Unmarshal(m.Return, result); err != nil {
					return fmt.Errorf("%w: decode the return value: %v", ErrQMP, err)
				}
			}
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	return nil
}
