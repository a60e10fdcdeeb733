package plugins

import "context"

// SourceConfig is a configured source as a plugin sees it.
type SourceConfig struct {
	Name     string
	Settings map[string]string // the source record's configuration; not secret
	// Secrets are the source's credentials, decrypted for this use only.
	// Plugins never log them, put them in errors or return them.
	Secrets map[string]string
}

// TargetConfig says where and how to restore.
type TargetConfig struct {
	// Location is the part after "scheme:" of a restore destination.
	Location  string
	Overwrite bool
	// Options are per-kind restore options, such as "volume-name".
	Options map[string]string
	// Source is set when Location names a configured source of the same
	// kind, so a target can reach the system with that source's credentials.
	Source *SourceConfig
	// Object is the restore point's object name.
	Object string
	// ObjectConfig is what the snapshot's Describer saved at backup time.
	ObjectConfig []byte
}

// Kind is one plugin as the appliance wires it. Either constructor may be
// nil when the plugin only backs up or only restores. A constructor checks
// the configuration and returns an error wrapping ErrInvalid for a bad one
// and ErrNotFound for a missing object, without contacting slow systems
// where it can avoid it.
type Kind struct {
	Name      string
	NewSource func(ctx context.Context, cfg SourceConfig) (Source, error)
	NewTarget func(ctx context.Context, cfg TargetConfig) (Target, error)
}

// Describer is implemented by a Snapshot that saves the object's
// configuration (a VM's settings) with the restore point, so a restore can
// rebuild the object.
type Describer interface {
	Describe(ctx context.Context) ([]byte, error)
}

// Finisher is implemented by a Target with work to do after every disk has
// committed, such as creating the VM the disks belong to. The fields it
// returns are recorded in the restore job's result (e.g. "volume_id").
type Finisher interface {
	Finish(ctx context.Context) (map[string]string, error)
}
