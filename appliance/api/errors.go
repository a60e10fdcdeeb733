package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// Stable error codes carried in error bodies. Clients branch on these, never
// on the message.
const (
	CodeInvalid          = "invalid"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeExists           = "already_exists"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
)

// Errors the server raises itself, before or instead of the Service.
var (
	errUnauthorized = errors.New("missing or invalid API token: send Authorization: Bearer <token>")
	errNoRoute      = errors.New("no such API endpoint")
	errMethod       = errors.New("method not allowed on this endpoint")
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// statusOf is the one place that maps an error to an HTTP status and a
// stable code. More specific kinds are checked before ErrInvalid so that a
// service error wrapping both reports the specific one.
func statusOf(err error) (int, string) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, CodeUnauthorized
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, CodeMethodNotAllowed
	case errors.Is(err, errNoRoute),
		errors.Is(err, meta.ErrNotFound),
		errors.Is(err, plugins.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, meta.ErrExists), errors.Is(err, plugins.ErrExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, meta.ErrConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, ErrInvalid), errors.Is(err, meta.ErrInvalid), errors.Is(err, plugins.ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, meta.ErrClosed):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

// oneLine keeps an error message to a single line for bodies and logs.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// Error is an error response as the client sees it.
type Error struct {
	Status  int    // HTTP status
	Code    string // one of the Code constants
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinels matching the code, so that callers test a
// remote error with errors.Is exactly as they would test the Service's.
func (e *Error) Unwrap() []error {
	switch e.Code {
	case CodeNotFound:
		return []error{meta.ErrNotFound, plugins.ErrNotFound}
	case CodeExists:
		return []error{meta.ErrExists, plugins.ErrExists}
	case CodeConflict:
		return []error{meta.ErrConflict}
	case CodeInvalid:
		return []error{ErrInvalid, meta.ErrInvalid, plugins.ErrInvalid}
	}
	return nil
}

// codeForStatus guesses a code for an error response without a JSON body,
// such as one from a proxy in front of the appliance.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return CodeUnauthorized
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeInternal
}
