// Package api is Cairn's REST API: an HTTPS server under /api/v1 described by
// an embedded OpenAPI 3.1 document, the TLS material and admin token it
// creates on first start, and a Go client that the CLI and tests use.
//
// The server holds no state of its own. Every call goes to a Service; the
// server authenticates, decodes strictly, validates, audits mutating calls and
// maps the Service's errors to HTTP statuses in one place (statusOf). The
// client maps them back, so errors.Is(err, meta.ErrNotFound) holds on both
// sides of the wire.
package api

import (
	"context"
	"errors"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

// ErrInvalid marks a request the service refuses as malformed or
// contradictory. The server answers it with 400.
var ErrInvalid = errors.New("invalid request")

// Service is what the API serves. Long work (backup, restore, verify) starts
// a job and returns it at once; callers follow it with Job.
//
// Errors wrap meta.ErrNotFound or plugins.ErrNotFound (404), meta.ErrExists
// or plugins.ErrExists (409), meta.ErrConflict (409), ErrInvalid or
// meta.ErrInvalid (400), or meta.ErrClosed (503); anything else is an
// internal error (500) whose text is still shown to the caller, so it must
// not carry secrets.
type Service interface {
	// AddSource checks a source with its plugin and records it, its secrets
	// sealed. The source returned, like every one listed, carries no secrets.
	AddSource(ctx context.Context, req AddSourceRequest) (meta.Source, error)
	Sources(ctx context.Context) ([]meta.Source, error)
	Objects(ctx context.Context, source string) ([]plugins.Object, error)
	StartBackup(ctx context.Context, req BackupRequest) (meta.Job, error)
	StartRestore(ctx context.Context, req RestoreRequest) (meta.Job, error)
	StartVerify(ctx context.Context, restorePoint string) (meta.Job, error)
	RestorePoints(ctx context.Context, f meta.Filter) ([]meta.RestorePoint, error)
	RestorePoint(ctx context.Context, id string) (meta.RestorePoint, error)
	// Jobs lists at most limit jobs, newest first.
	Jobs(ctx context.Context, limit int) ([]meta.Job, error)
	Job(ctx context.Context, id string) (meta.Job, error)
	// StartGC starts a garbage-collection round.
	StartGC(ctx context.Context, req GCRequest) (meta.Job, error)
	// DeleteRestorePoint forgets a restore point; its chunks go in later
	// garbage-collection rounds.
	DeleteRestorePoint(ctx context.Context, id string) error
	// CreatePolicy records a new policy; Policies lists them; AssignPolicy
	// applies one to a source or an object.
	CreatePolicy(ctx context.Context, req PolicyRequest) (meta.Policy, error)
	Policies(ctx context.Context) ([]meta.Policy, error)
	AssignPolicy(ctx context.Context, name, target string) (meta.Policy, error)
	// Prune deletes the restore points their policies do not keep.
	Prune(ctx context.Context, dryRun bool) (PruneResult, error)
	// CancelJob asks a job to stop and returns it as it then stands; a job
	// that has already finished is a conflict.
	CancelJob(ctx context.Context, id string) (meta.Job, error)
}

// AddSourceRequest adds a source. Secrets (passwords, credential secrets)
// are write-only: the appliance seals them with its master key and never
// returns or logs them.
type AddSourceRequest struct {
	Name    string            `json:"name"`
	Kind    string            `json:"kind"`
	Tenant  string            `json:"tenant,omitempty"`
	Config  map[string]string `json:"config,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// BackupRequest starts a backup of one object of a source.
//
// ChangedExtents nil means the caller has no list; an empty, non-nil list
// means nothing changed. omitzero (not omitempty) keeps that difference on
// the wire: [] is sent, only nil is left out.
type BackupRequest struct {
	Source         string           `json:"source"`
	Object         string           `json:"object,omitempty"` // empty: the source's only object
	Full           bool             `json:"full,omitempty"`
	ChangedExtents []plugins.Extent `json:"changed_extents,omitzero"`
}

// GCRequest starts a garbage-collection round. Grace is how long a chunk
// must have gone unreferenced to be collected, as a Go duration ("1h",
// "0s"); empty means the appliance's default (one hour).
type GCRequest struct {
	Grace string `json:"grace,omitempty"`
}

// RestoreRequest restores a restore point to a target.
type RestoreRequest struct {
	RestorePoint string `json:"restore_point"`
	To           string `json:"to"` // "file:PATH" (path on the appliance), "openstack:SOURCE", ...
	Overwrite    bool   `json:"overwrite,omitempty"`
	// Options are the target kind's restore options, such as "volume-name".
	Options map[string]string `json:"options,omitempty"`
}
