package nbd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Options says what to negotiate with the server.
type Options struct {
	// Export is the export's name; "" is the server's default export.
	Export string
	// MetaContexts are the metadata contexts to select for BlockStatus. A
	// context the server does not offer is not an error here; BlockStatus
	// on it returns ErrNoContext.
	MetaContexts []string
}

// maxOptionReply bounds the payload of one option reply: the longest valid
// one is a context ID and a 4 KiB name, or an error message.
const maxOptionReply = 64 << 10

// maxString bounds the names the client sends, as the protocol does.
const maxString = 4096

// session is what the handshake agreed.
type session struct {
	size       int64
	flags      uint16
	structured bool
	contexts   map[string]uint32
}

// negotiate runs the fixed newstyle handshake on rw.
func negotiate(rw io.ReadWriter, opts Options) (*session, error) {
	if len(opts.Export) > maxString {
		return nil, fmt.Errorf("nbd: export name longer than %d bytes", maxString)
	}
	var hello [18]byte
	if _, err := io.ReadFull(rw, hello[:]); err != nil {
		return nil, fmt.Errorf("nbd: read server greeting: %w", err)
	}
	if m := binary.BigEndian.Uint64(hello[0:]); m != magicNBD {
		return nil, protocolf("greeting magic %#x", m)
	}
	if m := binary.BigEndian.Uint64(hello[8:]); m != magicOpt {
		return nil, protocolf("server is not newstyle (magic %#x)", m)
	}
	sflags := binary.BigEndian.Uint16(hello[16:])
	if sflags&flagFixedNewstyle == 0 {
		return nil, protocolf("server does not support fixed newstyle negotiation")
	}
	cflags := uint32(flagFixedNewstyle)
	if sflags&flagNoZeroes != 0 {
		cflags |= flagNoZeroes
	}
	if err := binary.Write(rw, binary.BigEndian, cflags); err != nil {
		return nil, fmt.Errorf("nbd: send client flags: %w", err)
	}

	s := &session{contexts: map[string]uint32{}}
	if err := sendOption(rw, optStructuredReply, nil); err != nil {
		return nil, err
	}
	switch typ, data, err := readOptionReply(rw, optStructuredReply); {
	case err != nil:
		return nil, err
	case typ == repAck:
		s.structured = true
	case typ&repFlagError != 0:
		// Servers without structured replies still read and write.
	default:
		return nil, protocolf("unexpected reply %#x (%d bytes) to NBD_OPT_STRUCTURED_REPLY", typ, len(data))
	}

	if len(opts.MetaContexts) > 0 {
		if !s.structured {
			return nil, fmt.Errorf("nbd: server has no structured replies, so no metadata contexts")
		}
		if err := setMetaContexts(rw, opts, s); err != nil {
			return nil, err
		}
	}
	if err := goExport(rw, opts.Export, s); err != nil {
		return nil, err
	}
	return s, nil
}

func sendOption(w io.Writer, opt uint32, data []byte) error {
	b := make([]byte, 16, 16+len(data))
	binary.BigEndian.PutUint64(b[0:], magicOpt)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], uint32(len(data)))
	if _, err := w.Write(append(b, data...)); err != nil {
		return fmt.Errorf("nbd: send option %d: %w", opt, err)
	}
	return nil
}

// readOptionReply reads one reply to opt. An error reply is returned as a
// type with repFlagError set and its message as data.
func readOptionReply(r io.Reader, opt uint32) (uint32, []byte, error) {
	var h [20]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("nbd: read reply to option %d: %w", opt, err)
	}
	if m := binary.BigEndian.Uint64(h[0:]); m != magicOptReply {
		return 0, nil, protocolf("option reply magic %#x", m)
	}
	if o := binary.BigEndian.Uint32(h[8:]); o != opt {
		return 0, nil, protocolf("reply to option %d while waiting for option %d", o, opt)
	}
	typ := binary.BigEndian.Uint32(h[12:])
	n := binary.BigEndian.Uint32(h[16:])
	if n > maxOptionReply {
		return 0, nil, protocolf("option reply of %d bytes", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, fmt.Errorf("nbd: read reply to option %d: %w", opt, err)
	}
	return typ, data, nil
}

// optionError describes an error reply to an option.
func optionError(what string, typ uint32, msg []byte) error {
	names := map[uint32]string{1: "unsupported", 2: "refused by policy", 3: "invalid", 4: "unsupported on this platform",
		5: "TLS required", 6: "unknown export", 7: "server shutting down", 8: "block size negotiation required", 9: "too big"}
	name := names[typ&^repFlagError]
	if name == "" {
		name = fmt.Sprintf("error %#x", typ)
	}
	if len(msg) > 0 && utf8.Valid(msg) {
		return fmt.Errorf("nbd: %s: %s: %q", what, name, msg)
	}
	return fmt.Errorf("nbd: %s: %s", what, name)
}

func putString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.WriteString(s)
}

func setMetaContexts(rw io.ReadWriter, opts Options, s *session) error {
	var b bytes.Buffer
	putString(&b, opts.Export)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(opts.MetaContexts)))
	for _, q := range opts.MetaContexts {
		if len(q) > maxString {
			return fmt.Errorf("nbd: metadata context name longer than %d bytes", maxString)
		}
		putString(&b, q)
	}
	if err := sendOption(rw, optSetMetaContext, b.Bytes()); err != nil {
		return err
	}
	for {
		typ, data, err := readOptionReply(rw, optSetMetaContext)
		switch {
		case err != nil:
			return err
		case typ == repAck:
			return nil
		case typ&repFlagError != 0:
			return optionError("select metadata contexts", typ, data)
		case typ != repMetaContext:
			return protocolf("unexpected reply %#x to NBD_OPT_SET_META_CONTEXT", typ)
		case len(data) < 5:
			return protocolf("metadata context reply of %d bytes", len(data))
		}
		id, name := binary.BigEndian.Uint32(data), string(data[4:])
		if _, dup := s.contexts[name]; dup {
			return protocolf("metadata context %q selected twice", name)
		}
		for n, other := range s.contexts {
			if other == id {
				return protocolf("metadata contexts %q and %q share ID %d", n, name, id)
			}
		}
		s.contexts[name] = id
	}
}

func goExport(rw io.ReadWriter, export string, s *session) error {
	var b bytes.Buffer
	putString(&b, export)
	_ = binary.Write(&b, binary.BigEndian, uint16(0)) // no extra information requests
	if err := sendOption(rw, optGo, b.Bytes()); err != nil {
		return err
	}
	gotExport := false
	for {
		typ, data, err := readOptionReply(rw, optGo)
		switch {
		case err != nil:
			return err
		case typ == repAck:
			if !gotExport {
				return protocolf("NBD_OPT_GO acknowledged without the export's size")
			}
			return nil
		case typ&repFlagError != 0:
			return optionError(fmt.Sprintf("open export %q", export), typ, data)
		case typ != repInfo:
			return protocolf("unexpected reply %#x to NBD_OPT_GO", typ)
		case len(data) < 2:
			return protocolf("information reply of %d bytes", len(data))
		}
		if binary.BigEndian.Uint16(data) != infoExport {
			continue // block sizes, names and descriptions are not needed
		}
		if len(data) != 12 {
			return protocolf("export information of %d bytes, want 12", len(data))
		}
		size := binary.BigEndian.Uint64(data[2:])
		if size > 1<<62 {
			return protocolf("export size %d", size)
		}
		s.size, s.flags, gotExport = int64(size), binary.BigEndian.Uint16(data[10:]), true
	}
}
