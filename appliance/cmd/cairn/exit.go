package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/appliance/api"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK           = 0
	exitFailure      = 1 // a job failed, verification found damage, a server error
	exitUsage        = 2 // bad flags or arguments, or a request the server called invalid
	exitNotFound     = 3
	exitConflict     = 4 // already exists, or conflicts with the current state
	exitConnect      = 5 // cannot reach the server, or TLS failed
	exitUnauthorized = 6
	exitInterrupted  = 130 // Ctrl-C
)

// exitError is an error with a chosen exit code.
type exitError struct {
	code int
	err  error
	hint string // appended to the message, such as "see cairn backup run --help"
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usage marks err as a usage error.
func usage(err error) error { return &exitError{code: exitUsage, err: err} }

func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// interrupted is returned when Ctrl-C stops a command that was following a
// job; the job itself goes on.
type interrupted struct{ job string }

func (e *interrupted) Error() string {
	return fmt.Sprintf("stopped following job %s; it keeps running on the server (cairn job show %s)", e.job, e.job)
}

// exitCode is the one place that maps an error to the process's exit code.
func exitCode(err error) int {
	var (
		ee  *exitError
		ae  *api.Error
		ie  *interrupted
		got = err != nil
	)
	switch {
	case !got:
		return exitOK
	case errors.As(err, &ie), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, api.ErrConnect):
		return exitConnect
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			return exitUsage
		case http.StatusUnauthorized, http.StatusForbidden:
			return exitUnauthorized
		case http.StatusNotFound:
			return exitNotFound
		case http.StatusConflict:
			return exitConflict
		}
	}
	return exitFailure
}

// message renders err as the one line printed after "cairn: ".
func message(err error) string {
	msg := err.Error()
	var ee *exitError
	if errors.As(err, &ee) && ee.hint != "" {
		msg += " (" + ee.hint + ")"
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		msg += " (is --ca the appliance's ca.pem?)"
	}
	if errors.Is(err, context.Canceled) {
		msg = "interrupted"
	}
	return strings.Join(strings.Fields(msg), " ")
}
