package main

import (
	"testing"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api/apitest"
)

func TestSourceAddLVM(t *testing.T) {
	srv := apitest.NewServer(t)
	fails(t, srv, exitUsage, "--vg is required", "source", "add", "lvm", "vms", "--lv", "data")
	fails(t, srv, exitUsage, "accepts 1 arg", "source", "add", "lvm", "--vg", "vg0")
	// The test server offers only "file" sources: its refusal shows the
	// request reached it as an lvm source.
	fails(t, srv, exitUsage, `source kind "lvm"`, "source", "add", "lvm", "vms", "--vg", "vg0", "--lv", "data")
}

func TestRestoreLVMFlags(t *testing.T) {
	cmd := newRestoreCmd(&app{})
	opts := restoreOptions{}
	probe := &cobra.Command{Use: "probe"}
	addLVMRestoreFlags(probe, opts)
	if err := probe.ParseFlags([]string{"--lv-name", "web-restored", "--thin-pool", "pool0"}); err != nil {
		t.Fatal(err)
	}
	if got := opts.values(); len(got) != 2 || got["lv-name"] != "web-restored" || got["thin-pool"] != "pool0" {
		t.Errorf("options sent: %v", got)
	}
	for _, name := range []string{"lv-name", "thin-pool"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("cairn restore has no --%s", name)
		}
	}
}
