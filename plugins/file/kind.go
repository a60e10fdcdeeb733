package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/plugins"
)

// Kind wires the file plugin: sources are {"path": ABSOLUTE PATH} of an
// image file or block device on the appliance, and a restore destination
// "file:PATH" is a new file (or an existing one with Overwrite).
func Kind() plugins.Kind {
	return plugins.Kind{Name: "file", NewSource: newSource, NewTarget: newTarget}
}

func newSource(_ context.Context, cfg plugins.SourceConfig) (plugins.Source, error) {
	path := cfg.Settings["path"]
	if path == "" {
		return nil, fmt.Errorf("a file source needs a path: %w", plugins.ErrInvalid)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("path %q is not absolute: %w", path, plugins.ErrInvalid)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, plugins.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("%s is neither a regular file nor a block device: %w", path, plugins.ErrInvalid)
	}
	return New(path), nil
}

func newTarget(_ context.Context, cfg plugins.TargetConfig) (plugins.Target, error) {
	path := cfg.Location
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("path %q is not absolute: %w", path, plugins.ErrInvalid)
	}
	if _, err := os.Stat(path); err == nil && !cfg.Overwrite {
		return nil, fmt.Errorf("%s already exists; restore with --overwrite to replace it: %w", path, plugins.ErrExists)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("folder %s does not exist: %w", filepath.Dir(path), plugins.ErrInvalid)
	}
	return NewTarget(path, cfg.Overwrite), nil
}
