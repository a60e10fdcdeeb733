package main

import "github.com/spf13/pflag"

// addVsphereRestoreFlags adds the restore flags of vsphere targets
// ("--to vsphere:SOURCE").
func addVsphereRestoreFlags(f *pflag.FlagSet, opts restoreOptions) {
	opts["vm-name"] = f.String("vm-name", "", "vsphere: name of the new VM (default: the original's name + \"-restored\")")
	opts["in-place"] = f.String("in-place", "", "vsphere: \"true\" restores onto the original VM's disks (it must be powered off; needs --overwrite)")
}
