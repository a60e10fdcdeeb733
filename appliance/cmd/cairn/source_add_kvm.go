package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

func newSourceAddKVMCmd(a *app) *cobra.Command {
	var image, qmp, drive string
	cmd := &cobra.Command{
		Use:   "kvm NAME (--image FILE.qcow2 | --qmp SOCKET --drive NODE)",
		Short: "Add a QEMU/KVM disk: an offline qcow2 image or a running VM's drive",
		Long: `Add a "kvm" source, backed up incrementally with QEMU's persistent dirty
bitmaps read over NBD:
  --image FILE.qcow2       a qcow2 image on the appliance that no VM is running
                           (qemu-nbd exports it; qemu-img manages its bitmaps)
  --qmp SOCKET --drive NODE  a block node of a running QEMU, through its QMP
                           socket on the appliance (crash-consistent, while the
                           guest keeps running)
Relative paths are made absolute against the current directory. The plugin
adds bitmaps named cairn-...; do not remove them, or the next backup reads
the whole disk.`,
		Example: `  cairn source add kvm web --image /var/lib/libvirt/images/web.qcow2
  cairn source add kvm db --qmp /run/qemu/db.qmp --drive drive0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			config := map[string]string{}
			switch {
			case image != "" && (qmp != "" || drive != ""):
				return usagef("give --image, or --qmp and --drive, not both")
			case image != "":
				abs, err := filepath.Abs(image)
				if err != nil {
					return usage(err)
				}
				config["image"] = abs
			case qmp != "" && drive != "":
				abs, err := filepath.Abs(qmp)
				if err != nil {
					return usage(err)
				}
				config["qmp"], config["drive"] = abs, drive
			default:
				return usagef("--image, or --qmp and --drive, are required")
			}
			return a.addSource(cmd, api.AddSourceRequest{Name: args[0], Kind: "kvm", Config: config})
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "offline qcow2 image on the appliance")
	f.StringVar(&qmp, "qmp", "", "QMP socket of a running QEMU on the appliance")
	f.StringVar(&drive, "drive", "", "block node name of the drive to back up (with --qmp)")
	return cmd
}
