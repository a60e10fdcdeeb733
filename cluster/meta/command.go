package meta

import (
	"errors"
	"fmt"
	"time"
)

// CommandType names a command of the replicated log. A command is one type
// byte followed by a body: a version byte and JSON (see record.go). Types are
// only ever appended; a type's number never changes meaning.
type CommandType uint8

// Command types. Every mutating catalog method has one.
const (
	AddSourceCommand          CommandType = 1
	RemoveSourceCommand       CommandType = 2
	CommitRestorePointCommand CommandType = 3
	SetVerifyCommand          CommandType = 4
	PutJobCommand             CommandType = 5
	InterruptRunningCommand   CommandType = 6
	PutKeyCommand             CommandType = 7
	SetNodeCommand            CommandType = 8
	RemoveNodeCommand         CommandType = 9
	PutJoinTokenCommand       CommandType = 10
	RedeemJoinTokenCommand    CommandType = 11
	BeginGCCommand            CommandType = 12
	EndGCCommand              CommandType = 13
	DeletePointCommand        CommandType = 14
	PutPolicyCommand          CommandType = 15
	RemovePolicyCommand       CommandType = 16
	PutRunCommand             CommandType = 17
	TakeJobCommand            CommandType = 18
	RenewLeaseCommand         CommandType = 19
	CancelJobCommand          CommandType = 20
	ExpireLeasesCommand       CommandType = 21
	FinishJobCommand          CommandType = 22
)

// IgnoreUnknown, set in the type byte, marks a command an older node may
// skip if it does not know the type; Apply clears it before dispatching, so
// 127 types fit. Without it an unknown type stops the node (Apply panics): skipping
// a command that changes state would silently fork that node's state from
// the others'.
const IgnoreUnknown CommandType = 0x80

// ErrBadCommand is what Apply panics with (wrapped) when a command cannot be
// read: an empty entry, a body that does not decode, or an unknown type
// without IgnoreUnknown.
var ErrBadCommand = errors.New("bad command")

type addSourceBody struct {
	Source Source `json:"source"`
}

type removeSourceBody struct {
	Name string `json:"name"`
}

type commitBody struct {
	Point RestorePoint `json:"point"`
}

type setVerifyBody struct {
	ID     string      `json:"id"`
	Verify VerifyState `json:"verify"`
}

type putJobBody struct {
	Job Job `json:"job"`
}

// interruptBody carries the time so that every replica stamps the same one.
type interruptBody struct {
	Now  time.Time `json:"now"`
	Node string    `json:"node,omitempty"`
}

type putKeyBody struct {
	Key WrappedKey `json:"key"`
}

type setNodeBody struct {
	Node Node `json:"node"`
}

type removeNodeBody struct {
	ID string `json:"id"`
}

type putTokenBody struct {
	Token JoinToken `json:"token"`
}

type redeemTokenBody struct {
	Hash string    `json:"hash"`
	Node string    `json:"node"`
	Now  time.Time `json:"now"`
}

// encodeCommand returns the log entry of a command; an ErrInvalid error if
// body cannot be encoded.
func encodeCommand(t CommandType, body any) ([]byte, error) {
	b, err := encode(body)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(t)}, b...), nil
}

// decodeBody decodes a command body into v, panicking with ErrBadCommand if
// it cannot: a replica that cannot read an entry every other replica read
// must stop rather than diverge.
func decodeBody(t CommandType, b []byte, v any) {
	if err := decode(b, v); err != nil {
		panic(fmt.Errorf("meta: apply command %d: decode body: %v: %w", t, err, ErrBadCommand))
	}
}
