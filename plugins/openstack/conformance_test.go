package openstack

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cairnhq/cairn/plugins/plugintest"
)

// The source suite runs on 1 GiB volumes, Cinder's smallest. The target
// suite restores disks of plugintest.DefaultCapacity (about 10 MiB) into
// volumes rounded up to 1 GiB, and reads back the first Capacity bytes.
const suiteCapacity = 1 << 30

func TestSourceConformance(t *testing.T) {
	e := newEnv(t)
	plugintest.RunSource(t, plugintest.SourceHarness{
		Capacity: suiteCapacity,
		New: func(t *testing.T, content []byte) plugintest.SourceFixture {
			v, att := e.volume(t, "suite", 1, content)
			return plugintest.SourceFixture{
				Source: e.source(),
				Object: v.Name,
				Write: func(off int64, p []byte) error {
					f, err := os.OpenFile(att.Device.String(), os.O_WRONLY, 0)
					if err != nil {
						return err
					}
					defer f.Close()
					if _, err := f.WriteAt(p, off); err != nil {
						return err
					}
					return f.Sync()
				},
				Leftovers: func() ([]string, error) { return e.leftovers(v.ID) },
			}
		},
	})
}

func TestTargetConformance(t *testing.T) {
	e := newEnv(t)
	const capacity = plugintest.DefaultCapacity
	plugintest.RunTarget(t, plugintest.TargetHarness{
		Capacity: capacity,
		New: func(t *testing.T, existing, overwrite bool) plugintest.TargetFixture {
			opts := TargetOptions{Overwrite: overwrite}
			var id func() (string, error)
			if existing {
				content := make([]byte, capacity)
				for i := range content {
					content[i] = byte(i%251) + 1
				}
				v, att := e.volume(t, "existing", 1, content)
				if err := e.a.detach(context.Background(), att); err != nil {
					t.Fatal(err)
				}
				if _, err := e.a.waitVolume(context.Background(), v.ID, "available"); err != nil {
					t.Fatal(err)
				}
				opts.Volume = v.ID
				id = func() (string, error) { return v.ID, nil }
			} else {
				opts.Name = fmt.Sprintf("restored-%d", volSeq.Add(1))
				id = func() (string, error) {
					vols, err := e.a.listVolumes(context.Background(), volumes.ListOpts{Name: opts.Name})
					if err != nil {
						return "", err
					}
					for _, v := range vols {
						if v.Name == opts.Name && v.Metadata[metaRole] == "" {
							t.Cleanup(func() { e.remove(t, v.ID) })
							return v.ID, nil
						}
					}
					return "", fs.ErrNotExist
				}
			}
			return plugintest.TargetFixture{
				Target: NewTarget(e.source(), opts, "suite"),
				Read: func() ([]byte, error) {
					vid, err := id()
					if err != nil {
						return nil, err
					}
					return readFile(e.d.VolumeFile(vid), capacity)
				},
				Leftovers: func() ([]string, error) { return e.restoreLeftovers() },
			}
		},
	})
}

// restoreLeftovers lists volumes still marked as restores in progress and
// attachments of this appliance to any volume.
func (e *env) restoreLeftovers() ([]string, error) {
	vols, err := e.a.listVolumes(context.Background(), volumes.ListOpts{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vols {
		if v.Metadata[metaRole] != "" {
			out = append(out, fmt.Sprintf("volume %s (%s, %s)", v.ID, v.Name, v.Metadata[metaRole]))
		}
		if v.Status != "available" && v.Status != "in-use" {
			out = append(out, fmt.Sprintf("volume %s in status %s", v.ID, v.Status))
		}
		atts, err := e.a.attachmentsOf(context.Background(), v.ID)
		if err != nil {
			return nil, err
		}
		// The source suite's volumes stay attached to their guest.
		if len(atts) > 0 && !strings.HasPrefix(v.Name, "suite-") {
			out = append(out, fmt.Sprintf("volume %s (%s) has %d attachments", v.ID, v.Name, len(atts)))
		}
	}
	return out, nil
}

// readFile returns the first n bytes of a file.
func readFile(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}
