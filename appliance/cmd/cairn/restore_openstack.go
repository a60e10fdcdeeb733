package main

import "github.com/spf13/cobra"

// addOpenStackRestoreFlags adds the openstack target's options: restore to
// openstack:SOURCE makes a new Cinder volume, or with --overwrite restores
// onto the detached volume --volume-id (or the one --volume-name names).
func addOpenStackRestoreFlags(cmd *cobra.Command, opts restoreOptions) {
	f := cmd.Flags()
	opts["volume-name"] = f.String("volume-name", "", "openstack: name of the new volume (default: cairn-restore-OBJECT; an existing detached one needs --overwrite)")
	opts["volume-type"] = f.String("volume-type", "", "openstack: volume type of the new volume (default: the cloud's default)")
	opts["volume"] = f.String("volume-id", "", "openstack: restore onto this existing, detached volume (needs --overwrite)")
	opts["availability-zone"] = f.String("availability-zone", "", "openstack: availability zone of the new volume")
}
