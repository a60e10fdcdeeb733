package file_test

import (
	"testing"

	"github.com/cairnhq/cairn/plugins/plugintest"
)

func TestSourceConformance(t *testing.T) {
	t.Run("image/extent-list", func(t *testing.T) {
		plugintest.RunSource(t, plugintest.SourceHarness{
			New:         imageSource,
			Incremental: changedExtents,
			Delta:       true,
		})
	})
	t.Run("image/hash-compare", func(t *testing.T) {
		plugintest.RunSource(t, plugintest.SourceHarness{New: imageSource})
	})
	t.Run("block-device", func(t *testing.T) {
		plugintest.RunSource(t, plugintest.SourceHarness{
			Capacity:    10 << 20, // loop devices are whole sectors
			New:         deviceSource,
			Incremental: changedExtents,
			Delta:       true,
		})
	})
}

func TestTargetConformance(t *testing.T) {
	t.Run("image", func(t *testing.T) {
		plugintest.RunTarget(t, plugintest.TargetHarness{New: imageTarget(plugintest.DefaultCapacity)})
	})
	t.Run("block-device", func(t *testing.T) {
		const capacity = 10 << 20
		plugintest.RunTarget(t, plugintest.TargetHarness{
			Capacity:     capacity,
			New:          deviceTarget(capacity),
			ExistingOnly: true,
		})
	})
}
