package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxBodyBytes bounds a request body. The largest legitimate body is
// a backup request with a long changed_extents list: 64 MiB holds well over
// a million extents.
const DefaultMaxBodyBytes = 64 << 20

// decodeBody reads exactly one JSON value into v. Unknown fields, trailing
// data and an empty body are refused; every failure wraps ErrInvalid, except
// an over-long body, which surfaces as *http.MaxBytesError.
func decodeBody(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return invalidf("unexpected data after the JSON object")
	}
	return nil
}

// decodeOptionalBody is decodeBody for endpoints whose body may be absent.
func decodeOptionalBody(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeBody(bytes.NewReader(data), v)
}

// bodyError turns a decoding failure into a message naming what was wrong.
func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("request body is larger than %d bytes: %w", tooLarge.Limit, err)
	case errors.Is(err, io.EOF):
		return invalidf("request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("request body ends inside a JSON value")
	case errors.As(err, &syntax):
		return invalidf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return invalidf("field %q must be %s, not %s", field, jsonKind(typ.Type.String()), typ.Value)
	}
	return invalidf("%s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON author thinks of it.
func jsonKind(goType string) string {
	switch {
	case goType == "time.Time":
		return "an RFC 3339 time string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"),
		strings.Contains(goType, "."):
		return "an object"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"),
		strings.HasPrefix(goType, "float"):
		return "a number (" + goType + ")"
	}
	return goType
}
