package keys

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFile puts data at path with mode 0600 so that a crash leaves either
// the old file or the new one, never a torn one: it writes and fsyncs a
// temporary file beside path, moves it into place and fsyncs the directory.
// Unless replace is set an existing file is an error, never overwritten.
func writeFile(path string, data []byte, replace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		if err := os.Rename(name, path); err != nil {
			return err
		}
	} else {
		// A hard link fails if path exists, where rename would replace it.
		if err := os.Link(name, path); err != nil {
			return err
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("remove temporary file: %w", err)
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
