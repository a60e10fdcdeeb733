package main

import (
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

func newSourceAddLVMCmd(a *app) *cobra.Command {
	var vg, lv string
	cmd := &cobra.Command{
		Use:   "lvm NAME --vg VG [--lv LV]",
		Short: "Add LVM thin volumes of a volume group on the appliance",
		Long: `Add an "lvm" source: the thin volumes of a volume group on the appliance, or
only --lv. Each backup takes a thin snapshot and reads what thin_delta reports
changed since the previous backup's snapshot, which is kept until the next
backup is committed (one snapshot per volume between backups). Needs lvm2,
dmsetup and thin-provisioning-tools on the appliance.`,
		Example: "  cairn source add lvm vms --vg vg0\n  cairn source add lvm db --vg vg0 --lv postgres",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if vg == "" {
				return usagef("--vg is required")
			}
			config := map[string]string{"vg": vg}
			if lv != "" {
				config["lv"] = lv
			}
			return a.addSource(cmd, api.AddSourceRequest{Name: args[0], Kind: "lvm", Config: config})
		},
	}
	cmd.Flags().StringVar(&vg, "vg", "", "volume group holding the thin volumes")
	cmd.Flags().StringVar(&lv, "lv", "", "protect only this thin volume (default: every thin volume of the group)")
	return cmd
}
