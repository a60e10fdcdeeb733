package file

import "github.com/cairnhq/cairn/plugins"

// OpenInPlace opens the existing block device or regular file at path for a
// restore written in place, as the Target does for a block device with
// overwrite: writes outside [0, capacity) fail, Commit zeroes every range
// not written (punching holes where it can) and flushes, and bytes past
// capacity are left alone. Other plugins use it for devices they attach
// themselves (an OpenStack volume attached to the appliance).
func OpenInPlace(path string, capacity int64) (plugins.Writer, error) {
	return openDevice(path, capacity)
}
