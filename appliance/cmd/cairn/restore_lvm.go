package main

import "github.com/spf13/cobra"

// addLVMRestoreFlags adds the lvm target's options: restore to lvm:SOURCE
// (or lvm:VG) makes a new thin volume.
func addLVMRestoreFlags(cmd *cobra.Command, opts restoreOptions) {
	f := cmd.Flags()
	opts["lv-name"] = f.String("lv-name", "", "lvm: thin volume to restore into (default: the backed-up volume's name; an existing one needs --overwrite)")
	opts["thin-pool"] = f.String("thin-pool", "", "lvm: thin pool for the new volume (default: the pool of the volume it replaces or was backed up from, or the group's only pool)")
}
