package meta_test

import (
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/meta/metatest"
)

func TestFSMConformance(t *testing.T) {
	metatest.Run(t, func(*testing.T) metatest.Catalog { return meta.NewDirect() })
}
