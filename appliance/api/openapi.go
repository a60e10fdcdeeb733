package api

import _ "embed"

// openAPIDoc is the OpenAPI 3.1 description of the API, written by hand and
// held to the route table and the Go types by tests.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns a copy of the OpenAPI document the server publishes.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }
