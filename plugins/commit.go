package plugins

import "context"

// Committer is implemented by a Snapshot whose change tracking must know that
// the restore point taken from it is in the catalog: an LVM thin snapshot or
// a dirty bitmap becomes the base of the next incremental only then, and the
// previous one may go only then. The caller calls Committed after it
// committed the restore point and before Close; a Snapshot closed without
// Committed treats the backup as failed and removes what it made. An error
// from Committed does not undo the restore point.
type Committer interface {
	Committed(ctx context.Context) error
}
