package store_test

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := store.Open(t.TempDir(), store.Options{Now: now, MaxSegmentSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemoryConformance(t *testing.T) {
	storetest.RunClock(t, func(t *testing.T, now func() time.Time) store.Store {
		return store.NewMemory(store.Options{Now: now})
	})
}

// TestRunWithoutClock checks that the clock-free entry point works and skips
// only what needs a clock.
func TestRunWithoutClock(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.Options{})
	})
}
