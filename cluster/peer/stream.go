package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
)

// streamer writes records to a response, flushing when its buffer fills and
// whenever asked, so a reader sees chunks as they come.
type streamer struct {
	bw  *bufio.Writer
	rc  *http.ResponseController
	buf []byte
}

func newStreamer(w http.ResponseWriter) *streamer {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	return &streamer{bw: bufio.NewWriterSize(w, 64<<10), rc: http.NewResponseController(w)}
}

func (s *streamer) record(kind byte, id chunk.ID, payload []byte) error {
	s.buf = appendRecord(s.buf[:0], kind, id, payload)
	_, err := s.bw.Write(s.buf)
	return err
}

func (s *streamer) flush() error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	return s.rc.Flush()
}

// getBatch streams one record per requested ID, in request order.
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.readIDs(w, r)
	if !ok || !s.enter(r) {
		return
	}
	defer s.leave()
	out := newStreamer(w)
	for _, id := range ids {
		b, err := s.st.Get(r.Context(), id)
		switch {
		case err == nil:
			err = out.record(kindChunk, id, b)
		case errors.Is(err, store.ErrNotFound):
			err = out.record(kindNotFound, id, nil)
		case errors.Is(err, chunk.ErrCorrupt):
			err = out.record(kindCorrupt, id, message(err))
		default:
			err = out.record(kindFailed, id, message(err))
		}
		if err == nil {
			err = out.flush()
		}
		if err != nil {
			return // the peer has gone
		}
	}
	if out.record(kindEnd, chunk.Zero, nil) == nil {
		out.flush()
	}
}

// walk streams the store's IDs and infos in ID order.
func (s *Server) walk(w http.ResponseWriter, r *http.Request) {
	if !s.enter(r) {
		return
	}
	defer s.leave()
	out := newStreamer(w)
	var info []byte
	err := s.st.Walk(r.Context(), func(id chunk.ID, in store.Info) error {
		info = appendInfo(info[:0], in)
		return out.record(kindChunk, id, info)
	})
	if err != nil {
		if out.record(kindFailed, chunk.Zero, message(err)) == nil {
			out.flush()
		}
		return
	}
	if out.record(kindEnd, chunk.Zero, nil) == nil {
		out.flush()
	}
}

// GetBatch fetches ids in one streamed request and calls fn for each, in
// order, with its sealed bytes (checked with chunk.Check) or its error
// (store.ErrNotFound, chunk.ErrCorrupt, or another the peer met). It stops
// at the first error fn returns, and returns it.
func (c *Client) GetBatch(ctx context.Context, ids []chunk.ID, fn func(id chunk.ID, sealed []byte, err error) error) error {
	op := fmt.Sprintf("get %d chunks", len(ids))
	if err := c.begin(ctx, op); err != nil {
		return err
	}
	for part := range slices.Chunk(ids, c.opts.BatchIDs) {
		err := c.stream(ctx, http.MethodPost, "get", appendIDs(nil, part), chunk.MaxSealed, func(rec record) error {
			if len(part) == 0 || rec.id != part[0] {
				return fmt.Errorf("%w: answer for chunk %s out of order", errMalformed, rec.id.Short())
			}
			part = part[1:]
			var err error
			switch rec.kind {
			case kindChunk:
				if err = chunk.Check(rec.payload); err != nil {
					err = c.errorf("get chunk "+rec.id.Short(), err)
					rec.payload = nil
				}
			case kindNotFound:
				err = c.errorf("get chunk "+rec.id.Short(), store.ErrNotFound)
			case kindCorrupt:
				err = c.errorf("get chunk "+rec.id.Short(), fmt.Errorf("%w: %s", chunk.ErrCorrupt, rec.payload))
			default:
				err = c.errorf("get chunk "+rec.id.Short(), fmt.Errorf("%w: %s", ErrUnavailable, rec.payload))
			}
			return &userError{fn(rec.id, rec.payload, err)}
		})
		if err == nil && len(part) > 0 {
			err = fmt.Errorf("%w: stream ended %d chunks early", errMalformed, len(part))
		}
		if ue, ok := err.(*userError); ok {
			return ue.err
		}
		if err != nil {
			return c.errorf(op, err)
		}
	}
	return nil
}

// userError carries an error of the caller's fn through stream untouched.
type userError struct{ err error }

func (e *userError) Error() string { return e.err.Error() }

// Walk visits the peer's chunks in ID order, streamed; see store.Store.
// It refuses a stream whose IDs do not ascend.
func (c *Client) Walk(ctx context.Context, fn func(id chunk.ID, info store.Info) error) error {
	if err := c.begin(ctx, "walk"); err != nil {
		return err
	}
	var prev chunk.ID
	first := true
	err := c.stream(ctx, http.MethodGet, "walk", nil, infoSize, func(rec record) error {
		if rec.kind == kindFailed {
			return fmt.Errorf("%w: %s", ErrUnavailable, rec.payload)
		}
		if rec.kind != kindChunk {
			return fmt.Errorf("%w: record kind %d in a walk", errMalformed, rec.kind)
		}
		if !first && bytes.Compare(rec.id[:], prev[:]) <= 0 {
			return fmt.Errorf("%w: chunk %s after %s", errMalformed, rec.id.Short(), prev.Short())
		}
		first, prev = false, rec.id
		info, err := decodeInfo(rec.payload)
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return &userError{fn(rec.id, info)}
	})
	if ue, ok := err.(*userError); ok {
		return ue.err
	}
	if err != nil {
		return c.errorf("walk", err)
	}
	return nil
}

// stream sends a request and calls fn for each record of the reply up to
// its end record. A *userError from fn with a nil error lets the stream go
// on; any other non-nil result stops it and is returned.
func (c *Client) stream(ctx context.Context, method, path string, body []byte, maxPayload int, fn func(record) error) error {
	_, rc, cancel, err := c.call(ctx, method, path, body, true, 0)
	if err != nil {
		return err
	}
	defer cancel()
	defer rc.Close()
	br := bufio.NewReaderSize(countingReader{rc, &c.received}, 64<<10)
	for {
		rec, err := readRecord(br, maxPayload)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if errors.Is(err, errMalformed) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if rec.kind == kindEnd {
			return nil
		}
		if err := fn(rec); err != nil {
			if ue, ok := err.(*userError); ok && ue.err == nil {
				continue
			}
			return err
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}
