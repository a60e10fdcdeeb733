package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// principalAdmin is the only principal until users and roles arrive.
const principalAdmin = "admin"

// authenticate returns the principal a request's bearer token stands for.
// Both sides are hashed first so the comparison takes the same time
// whatever the length or content of the token presented.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	if !s.haveToken {
		return "", false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
		return "", false
	}
	return principalAdmin, true
}
