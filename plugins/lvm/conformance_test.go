package lvm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/lvm"
	"github.com/cairnhq/cairn/plugins/plugintest"
)

func TestSourceConformance(t *testing.T) {
	needTools(t)
	plugintest.RunSource(t, plugintest.SourceHarness{
		Capacity: 12 << 20, // a whole number of 4 MiB extents, as LVM sizes volumes
		Align:    512,
		Delta:    true,
		New: func(t *testing.T, content []byte) plugintest.SourceFixture {
			p := newPool(t)
			p.addVolume(testLV, content)
			keep := new([]string)
			return plugintest.SourceFixture{
				Source: keepSource{Source: p.source(t, lvm.Config{}), p: p, keep: keep},
				Object: testLV,
				Write:  func(off int64, b []byte) error { return p.write(testLV, off, b) },
				Leftovers: func() ([]string, error) {
					return p.leftovers(*keep...), nil
				},
			}
		},
	})
}

// keepSource records which snapshot a committed backup keeps, so leftovers
// can allow it and nothing else.
type keepSource struct {
	*lvm.Source
	p    *pool
	keep *[]string
}

func (k keepSource) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	s, err := k.Source.Open(ctx, object, opts)
	if err != nil {
		return nil, err
	}
	return &keepSnapshot{Snapshot: s, k: k}, nil
}

type keepSnapshot struct {
	plugins.Snapshot
	k keepSource
}

func (s *keepSnapshot) Committed(ctx context.Context) error {
	if err := s.Snapshot.(plugins.Committer).Committed(ctx); err != nil {
		return err
	}
	snaps := s.k.p.snapshots()
	if len(snaps) != 1 {
		return fmt.Errorf("after Committed the pool holds snapshots %q, want exactly one", snaps)
	}
	*s.k.keep = snaps
	return nil
}
