package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
)

// connectionInfo is an attachment's connection_info: the driver's volume
// type and the driver's data keys, which the connector for that type reads.
type connectionInfo struct {
	Type string
	Data json.RawMessage // the driver's "data" keys (a JSON object)
}

// maxConnectionInfo bounds the connection_info the plugin parses.
const maxConnectionInfo = 1 << 20

// A device is a volume connected to this appliance by a connector. Open
// and OpenWriter may each be called once; Close disconnects and is called
// once, after the view or writer is closed, committed or aborted.
type device interface {
	// String names the device in messages; it never holds a secret.
	String() string
	// Open returns a one-disk view of the device for a backup; the disk's
	// Changes(ctx, nil) reports its allocated extents ("allocated"), or
	// every byte ("full") where the device cannot tell.
	Open(ctx context.Context) (plugins.Snapshot, error)
	// OpenWriter returns a writer restoring capacity bytes in place (see
	// file.OpenInPlace for the contract: Commit zeroes what was not written).
	OpenWriter(ctx context.Context, capacity int64) (plugins.Writer, error)
	Close(ctx context.Context) error
}

// A connector turns connection info of its type into a device.
type connector func(ctx context.Context, ci connectionInfo) (device, error)

// connectors maps a driver_volume_type to its connector. A type not here is
// plugins.ErrUnsupported.
var connectors = map[string]connector{
	"local": connectLocal,
}

// parseConnectionInfo reads an attachment's connection_info. Cinder puts
// the driver's "data" keys at the top level of an attachment's
// connection_info; a nested "data" object (the older
// os-initialize_connection shape) is read too. A type without a connector
// is plugins.ErrUnsupported.
func parseConnectionInfo(raw []byte) (connectionInfo, error) {
	if len(raw) > maxConnectionInfo {
		return connectionInfo{}, fmt.Errorf("connection info of %d bytes is larger than %d", len(raw), maxConnectionInfo)
	}
	var ci struct {
		Type *string         `json:"driver_volume_type"`
		Data json.RawMessage `json:"data"`
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
	out := connectionInfo{Type: *ci.Type, Data: raw}
	if len(ci.Data) > 0 && string(ci.Data) != "null" {
		out.Data = ci.Data
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(out.Data, &obj); err != nil {
		return connectionInfo{}, fmt.Errorf("connection info data: %w", err)
	}
	if _, ok := connectors[out.Type]; !ok {
		return out, fmt.Errorf("unsupported connection type %q (supported: %s): %w",
			trim(out.Type), strings.Join(connectorTypes(), ", "), plugins.ErrUnsupported)
	}
	return out, nil
}

// connect parses connection info and connects its device.
func connect(ctx context.Context, raw []byte) (device, error) {
	ci, err := parseConnectionInfo(raw)
	if err != nil {
		return nil, err
	}
	return connectors[ci.Type](ctx, ci)
}

func connectorTypes() []string {
	var out []string
	for t := range connectors {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// localDevice is a device that is a path on this machine ("local"
// connection info, as Cinder's local-attach drivers give).
type localDevice struct{ path string }

// connectLocal reads the device_path of local connection info.
func connectLocal(_ context.Context, ci connectionInfo) (device, error) {
	var data struct {
		DevicePath *string `json:"device_path"`
	}
	if err := json.Unmarshal(ci.Data, &data); err != nil {
		return nil, fmt.Errorf("local connection info: %w", err)
	}
	if data.DevicePath == nil {
		return nil, fmt.Errorf("local connection info has no device_path")
	}
	p := *data.DevicePath
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return nil, fmt.Errorf("local connection info: device_path %q is not a clean absolute path", trim(p))
	}
	return localDevice{path: p}, nil
}

func (d localDevice) String() string { return d.path }

func (d localDevice) Open(ctx context.Context) (plugins.Snapshot, error) {
	return file.New(d.path).Open(ctx, filepath.Base(d.path), plugins.OpenOptions{})
}

func (d localDevice) OpenWriter(_ context.Context, capacity int64) (plugins.Writer, error) {
	return file.OpenInPlace(d.path, capacity)
}

func (localDevice) Close(context.Context) error { return nil }

// trim shortens text from outside for an error message.
func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
