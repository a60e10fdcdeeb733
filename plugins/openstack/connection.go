package openstack

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/plugins"
)

// connectionInfo is what the plugin uses of an attachment's
// connection_info.
type connectionInfo struct {
	Type       string
	DevicePath string
}

// maxConnectionInfo bounds the connection_info the plugin parses.
const maxConnectionInfo = 1 << 20

// parseConnectionInfo reads an attachment's connection_info. Cinder puts
// the driver's "data" keys at the top level of an attachment's
// connection_info; a nested "data" object (the older
// os-initialize_connection shape) is read too. Only "local" connections
// are supported: the device is a path on this machine. Every other type
// (iscsi, rbd, fibre_channel, nfs...) needs a connector of its own to turn
// it into a device, which the plugin does not have yet; it is
// plugins.ErrUnsupported.
func parseConnectionInfo(raw []byte) (connectionInfo, error) {
	if len(raw) > maxConnectionInfo {
		return connectionInfo{}, fmt.Errorf("connection info of %d bytes is larger than %d", len(raw), maxConnectionInfo)
	}
	var ci struct {
		Type       *string `json:"driver_volume_type"`
		DevicePath *string `json:"device_path"`
		Data       *struct {
			DevicePath *string `json:"device_path"`
		} `json:"data"`
	}
	if len(raw) == 0 || string(raw) == "null" {
		return connectionInfo{}, fmt.Errorf("the attachment has no connection info (was a connector sent?)")
	}
	if err := json.Unmarshal(raw, &ci); err != nil {
		return connectionInfo{}, fmt.Errorf("connection info: %w", err)
	}
	if ci.Type == nil || *ci.Type == "" {
		return connectionInfo{}, fmt.Errorf("connection info names no driver_volume_type")
	}
	out := connectionInfo{Type: *ci.Type}
	if out.Type != "local" {
		return out, fmt.Errorf("unsupported connection type %q (only \"local\" is supported): %w",
			trim(out.Type), plugins.ErrUnsupported)
	}
	switch {
	case ci.DevicePath != nil:
		out.DevicePath = *ci.DevicePath
	case ci.Data != nil && ci.Data.DevicePath != nil:
		out.DevicePath = *ci.Data.DevicePath
	default:
		return out, fmt.Errorf("local connection info has no device_path")
	}
	p := out.DevicePath
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return out, fmt.Errorf("local connection info: device_path %q is not a clean absolute path", trim(p))
	}
	return out, nil
}

// trim shortens text from outside for an error message.
func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
