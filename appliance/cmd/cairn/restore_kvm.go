package main

import "github.com/spf13/pflag"

// addRestoreKVMFlags adds the kvm target's restore flags.
func addRestoreKVMFlags(f *pflag.FlagSet, opts restoreOptions) {
	opts["format"] = f.String("format", "", "kvm:PATH only: image format, qcow2 (default) or raw")
}
