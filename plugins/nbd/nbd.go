// Package nbd is a small client for the Network Block Device protocol, as
// spoken by qemu-nbd and QEMU's built-in NBD server.
//
// It negotiates the fixed newstyle handshake with NBD_OPT_GO, structured
// replies (NBD_OPT_STRUCTURED_REPLY) and metadata contexts
// (NBD_OPT_SET_META_CONTEXT, e.g. "base:allocation" or
// "qemu:dirty-bitmap:NAME"), then reads, writes and queries block status
// over one connection. Requests are pipelined: ReadAt, WriteAt and
// BlockStatus are safe for concurrent use, each waiting only for its own
// reply. The reply parser is strict: a reply that does not match an
// outstanding request, a chunk outside the requested range, overlapping or
// missing read data, or a malformed block status ends the connection with an
// error wrapping ErrProtocol, and every request still waiting fails with it.
//
// The protocol is described in the NBD project's doc/proto.md; the metadata
// contexts QEMU offers are in QEMU's docs/interop/nbd.rst.
package nbd

import (
	"errors"
	"fmt"
)

// Errors.
var (
	// ErrProtocol is wrapped by every error caused by a server that breaks
	// the protocol.
	ErrProtocol = errors.New("nbd protocol violation")
	// ErrClosed is returned by requests on a closed client.
	ErrClosed = errors.New("nbd connection closed")
	// ErrNoContext is returned by BlockStatus for a metadata context the
	// server did not select during the handshake.
	ErrNoContext = errors.New("metadata context not negotiated")
)

// Magic numbers of the handshake and of the transmission phase.
const (
	magicNBD        = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt        = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply   = 0x0003e889045565a9
	magicRequest    = 0x25609513
	magicSimple     = 0x67446698
	magicStructured = 0x668e33ef
)

// Handshake flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1
)

// Options.
const (
	optExportName      = 1
	optAbort           = 2
	optGo              = 7
	optStructuredReply = 8
	optSetMetaContext  = 10
)

// Option reply types; error replies have bit 31 set.
const (
	repAck         = 1
	repInfo        = 3
	repMetaContext = 4
	repFlagError   = 1 << 31
)

// Information types of NBD_REP_INFO.
const infoExport = 0

// Transmission flags.
const (
	FlagHasFlags       = 1 << 0
	FlagReadOnly       = 1 << 1
	FlagSendFlush      = 1 << 2
	FlagSendWriteZeros = 1 << 6
	FlagCanMultiConn   = 1 << 8
)

// Commands.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdWriteZeroes = 6
	cmdBlockStatus = 7
)

// Structured reply flags and types; error types have bit 15 set.
const (
	replyFlagDone         = 1 << 0
	replyTypeNone         = 0
	replyTypeOffsetData   = 1
	replyTypeOffsetHole   = 2
	replyTypeBlockStatus  = 5
	replyTypeError        = 1<<15 + 1
	replyTypeErrorOffset  = 1<<15 + 2
	replyTypeErrorBitMask = 1 << 15
)

// Metadata context names and their status flags.
const (
	// ContextAllocation is the standard allocation context.
	ContextAllocation = "base:allocation"
	// StateHole marks an extent of ContextAllocation that is not allocated.
	StateHole = 1 << 0
	// StateZero marks an extent of ContextAllocation that reads as zeros.
	StateZero = 1 << 1
	// StateDirty marks a dirty extent of a "qemu:dirty-bitmap:NAME" context.
	StateDirty = 1 << 0
)

// DirtyBitmapContext names the metadata context of a QEMU dirty bitmap.
func DirtyBitmapContext(bitmap string) string { return "qemu:dirty-bitmap:" + bitmap }

// MaxPayload is the largest read or write one request carries: servers that
// do not announce limits accept at least this much.
const MaxPayload = 32 << 20

// MaxStatusSpan is the longest range one block status request asks about.
// The protocol's lengths are 32-bit; smaller requests also bound the size of
// one reply.
const MaxStatusSpan = 256 << 20

// Extent is a range of an export with the status flags of one context.
type Extent struct {
	Offset int64
	Length int64
	Flags  uint32
}

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Error is an error the server reported for one request.
type Error struct {
	Errno   uint32
	Message string // the server's own text, if it sent one
}

func (e *Error) Error() string {
	name := errnoNames[e.Errno]
	if name == "" {
		name = fmt.Sprintf("error %d", e.Errno)
	}
	if e.Message != "" {
		return fmt.Sprintf("nbd server: %s: %q", name, e.Message)
	}
	return "nbd server: " + name
}

var errnoNames = map[uint32]string{
	1: "EPERM", 5: "EIO", 12: "ENOMEM", 22: "EINVAL", 28: "ENOSPC",
	75: "EOVERFLOW", 95: "ENOTSUP", 108: "ESHUTDOWN",
}

func protocolf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}
