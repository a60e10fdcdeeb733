package kvm

import (
	"testing"

	"github.com/cairnhq/cairn/plugins/plugintest"
)

// capacity is the suite's default size rounded down to whole sectors, as
// QEMU images are.
const capacity = plugintest.DefaultCapacity / 512 * 512

func TestSourceConformance(t *testing.T) {
	t.Run("image", func(t *testing.T) {
		plugintest.RunSource(t, plugintest.SourceHarness{Capacity: capacity, Align: 512, New: imageHarness, Delta: true})
	})
	t.Run("vm", func(t *testing.T) {
		plugintest.RunSource(t, plugintest.SourceHarness{Capacity: capacity, Align: 512, New: vmHarness, Delta: true})
	})
}

func TestTargetConformance(t *testing.T) {
	for _, format := range []string{"qcow2", "raw"} {
		t.Run(format, func(t *testing.T) {
			plugintest.RunTarget(t, plugintest.TargetHarness{Capacity: capacity, Align: 512, New: targetHarness(format, capacity)})
		})
	}
}
