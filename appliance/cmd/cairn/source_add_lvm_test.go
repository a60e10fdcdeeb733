package main

import (
	"testing"

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
