package meta_test

import (
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/meta/metatest"
)

func TestLocalConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) metatest.Catalog {
		l, err := meta.OpenLocal(filepath.Join(t.TempDir(), "catalog.db"), meta.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}
