package openstack

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cairnhq/cairn/plugins"
)

// writer restores into an attached volume in place.
type writer struct {
	t        *Target
	a        *api
	timing   Timing
	capacity int64
	fresh    bool // the volume was created for this restore

	volumeID string
	att      *attachment
	dev      plugins.Writer // the device, written in place

	mu   sync.Mutex
	done string // "", "commit" or "abort"
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.capacity || int64(len(p)) > w.capacity-off {
		return 0, fmt.Errorf("write %d bytes at %d to volume %s: outside the %d-byte disk", len(p), off, w.volumeID, w.capacity)
	}
	return w.dev.WriteAt(p, off)
}

// Commit zeroes what was not written, flushes, detaches, and for a new
// volume clears the restore marker; the volume is then the restored disk.
func (w *writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.done {
	case "commit":
		return nil
	case "abort":
		return fmt.Errorf("commit volume %s: the restore was aborted", w.volumeID)
	}
	if err := w.dev.Commit(ctx); err != nil {
		return fmt.Errorf("commit volume %s: %w", w.volumeID, err)
	}
	if err := retry(ctx, w.timing.Cleanup, func(ctx context.Context) error { return w.a.detach(ctx, w.att) }); err != nil {
		return fmt.Errorf("commit volume %s: %w", w.volumeID, err)
	}
	if w.fresh {
		for _, key := range []string{metaRole, metaRun} {
			if err := w.clearMeta(ctx, key); err != nil {
				return err
			}
		}
	}
	w.done = "commit"
	w.t.mu.Lock()
	w.t.volumeID = w.volumeID
	w.t.mu.Unlock()
	return nil
}

func (w *writer) clearMeta(ctx context.Context, key string) error {
	url := w.a.sc.ServiceURL("volumes", w.volumeID, "metadata", key)
	return retry(ctx, w.timing.Cleanup, func(ctx context.Context) error {
		_, err := w.a.sc.Delete(ctx, url, nil)
		if err != nil && !notFound(err) {
			return fmt.Errorf("commit volume %s: clear metadata %s: %w", w.volumeID, key, err)
		}
		return nil
	})
}

// Abort detaches and, for a new volume, deletes it; an existing volume's
// content is then undefined. After Commit it does nothing.
func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != "" {
		return nil
	}
	w.done = "abort"
	if err := w.undo(ctx, nil); err != nil {
		return fmt.Errorf("abort restore to volume %s: %w", w.volumeID, err)
	}
	return nil
}

// undo closes the device, detaches, and deletes a new volume, retrying
// through API errors; it returns cause joined with whatever failed. A new
// volume it cannot delete is left for the next restore's sweep.
func (w *writer) undo(ctx context.Context, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := []error{cause}
	if w.dev != nil {
		errs = append(errs, w.dev.Abort(ctx))
	}
	if w.att != nil {
		errs = append(errs, retry(ctx, w.timing.Cleanup, func(ctx context.Context) error { return w.a.detach(ctx, w.att) }))
	}
	if w.fresh && w.volumeID != "" {
		err := retry(ctx, w.timing.Cleanup, func(ctx context.Context) error { return w.a.removeVolume(ctx, w.volumeID) })
		if err != nil {
			abandoned.Store(w.volumeID, true)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
