package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("restore point x: %w", meta.ErrNotFound), 404, CodeNotFound},
		{fmt.Errorf("object vm1: %w", plugins.ErrNotFound), 404, CodeNotFound},
		{fmt.Errorf("add source a: %w", meta.ErrExists), 409, CodeExists},
		{fmt.Errorf("restore to /x: %w", plugins.ErrExists), 409, CodeExists},
		{fmt.Errorf("cancel job: %w", meta.ErrConflict), 409, CodeConflict},
		{fmt.Errorf("bad: %w", ErrInvalid), 400, CodeInvalid},
		{fmt.Errorf("name: %w", meta.ErrInvalid), 400, CodeInvalid},
		{fmt.Errorf("source x: %w: %w", meta.ErrNotFound, ErrInvalid), 404, CodeNotFound},
		{meta.ErrClosed, 503, CodeUnavailable},
		{errUnauthorized, 401, CodeUnauthorized},
		{errNoRoute, 404, CodeNotFound},
		{errMethod, 405, CodeMethodNotAllowed},
		{&http.MaxBytesError{Limit: 10}, 413, CodeTooLarge},
		{plugins.ErrUnsupported, 500, CodeInternal},
		{errors.New("disk on fire"), 500, CodeInternal},
	}
	for _, tt := range tests {
		status, code := statusOf(tt.err)
		if status != tt.status || code != tt.code {
			t.Errorf("statusOf(%v) = %d %s, want %d %s", tt.err, status, code, tt.status, tt.code)
		}
	}
}

// TestErrorUnwrap checks that a remote error matches the sentinel the
// service wrapped, so callers test both sides of the wire the same way.
func TestErrorUnwrap(t *testing.T) {
	for _, sentinel := range []error{meta.ErrNotFound, plugins.ErrNotFound, meta.ErrExists, plugins.ErrExists, meta.ErrConflict, ErrInvalid} {
		_, code := statusOf(fmt.Errorf("x: %w", sentinel))
		remote := &Error{Status: 400, Code: code, Message: "x"}
		if !errors.Is(remote, sentinel) {
			t.Errorf("remote error with code %s does not match %v", code, sentinel)
		}
	}
	if errors.Is(&Error{Code: CodeConflict}, meta.ErrNotFound) {
		t.Error("conflict matches ErrNotFound")
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\t c \n"); got != "a; b c" {
		t.Errorf("oneLine = %q", got)
	}
}
