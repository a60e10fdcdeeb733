package libvix

import (
	"github.com/vmware/govmomi/vim25/types"

	"github.com/cairnhq/cairn/vddk"
)

// fileName returns the "[datastore] path.vmdk" VDDK opens for the disk.
func fileName(ref vddk.DiskRef) string {
	b, ok := ref.Backing.(types.BaseVirtualDeviceFileBackingInfo)
	if !ok {
		return ""
	}
	return b.GetVirtualDeviceFileBackingInfo().FileName
}
