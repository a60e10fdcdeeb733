package api

import (
	"fmt"
	"math"
	"strings"

	"github.com/cairnhq/cairn/cluster/meta"
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// nameRule says what meta.ValidName accepts.
var nameRule = fmt.Sprintf("1-%d characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", meta.MaxName)

// checkSource validates a source to add. Created is the server's to set,
// so whatever the client sent is dropped.
func checkSource(s *AddSourceRequest) error {
	if !meta.ValidName(s.Name) {
		return invalidf("source name %q: use %s", s.Name, nameRule)
	}
	if s.Kind == "" {
		return invalidf("source %s: kind is required (for example \"file\")", s.Name)
	}
	if s.Tenant != "" && !meta.ValidName(s.Tenant) {
		return invalidf("source %s: tenant name %q: use %s", s.Name, s.Tenant, nameRule)
	}
	for k := range s.Config {
		if k == "" {
			return invalidf("source %s: config has an empty key", s.Name)
		}
	}
	for k := range s.Secrets {
		if k == "" {
			return invalidf("source %s: secrets have an empty key", s.Name)
		}
	}
	return nil
}

// check validates a backup request on its own; whether the source, the
// object and the extents fit the disk is the service's to judge.
func (b BackupRequest) check() error {
	if b.Source == "" {
		return invalidf("source is required")
	}
	if !meta.ValidName(b.Source) {
		return invalidf("source name %q: use %s", b.Source, nameRule)
	}
	if b.Full && b.ChangedExtents != nil {
		return invalidf("full and changed_extents exclude each other")
	}
	for i, e := range b.ChangedExtents {
		switch {
		case e.Offset < 0:
			return invalidf("changed_extents[%d]: negative offset %d", i, e.Offset)
		case e.Length <= 0:
			return invalidf("changed_extents[%d]: length must be positive, not %d", i, e.Length)
		case e.Offset > math.MaxInt64-e.Length:
			return invalidf("changed_extents[%d]: offset+length overflows", i)
		}
	}
	return nil
}

// check validates a restore request.
func (q RestoreRequest) check() error {
	if q.RestorePoint == "" {
		return invalidf("restore_point is required")
	}
	kind, where, ok := strings.Cut(q.To, ":")
	if q.To == "" {
		return invalidf("to is required, for example \"file:/path/on/appliance\"")
	}
	if !ok || kind == "" || where == "" {
		return invalidf("to %q: want KIND:WHERE, for example \"file:/path/on/appliance\"", q.To)
	}
	for k := range q.Options {
		if k == "" {
			return invalidf("options have an empty key")
		}
	}
	return nil
}
