package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

func TestParseConnectionInfo(t *testing.T) {
	tests := []struct {
		name, in, want string
		unsupported    bool
		fails          bool
	}{
		{name: "flattened", in: `{"driver_volume_type":"local","device_path":"/var/lib/x/volume-1","access_mode":"rw"}`, want: "/var/lib/x/volume-1"},
		{name: "nested data", in: `{"driver_volume_type":"local","data":{"device_path":"/dev/sdb"}}`, want: "/dev/sdb"},
		{name: "iscsi", in: `{"driver_volume_type":"iscsi","target_iqn":"iqn.x","target_portal":"10.0.0.1:3260"}`, unsupported: true, fails: true},
		{name: "rbd", in: `{"driver_volume_type":"rbd","name":"volumes/volume-1"}`, unsupported: true, fails: true},
		{name: "no type", in: `{"device_path":"/dev/sdb"}`, fails: true},
		{name: "no path", in: `{"driver_volume_type":"local"}`, fails: true},
		{name: "relative", in: `{"driver_volume_type":"local","device_path":"dev/sdb"}`, fails: true},
		{name: "unclean", in: `{"driver_volume_type":"local","device_path":"/dev/../etc/passwd"}`, fails: true},
		{name: "null", in: `null`, fails: true},
		{name: "empty", in: ``, fails: true},
		{name: "not json", in: `{"driver_volume_type":`, fails: true},
		{name: "wrong type", in: `{"driver_volume_type":7}`, fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, err := connect(context.Background(), []byte(tt.in))
			if tt.fails != (err != nil) {
				t.Fatalf("connect(%s) = %v, %v; want failure %v", tt.in, dev, err, tt.fails)
			}
			if tt.unsupported != errors.Is(err, plugins.ErrUnsupported) {
				t.Errorf("error %v: unsupported = %v, want %v", err, !tt.unsupported, tt.unsupported)
			}
			if err == nil && dev.String() != tt.want {
				t.Errorf("device %q, want %q", dev, tt.want)
			}
		})
	}
}

func FuzzParseConnectionInfo(f *testing.F) {
	for _, s := range []string{
		`{"driver_volume_type":"local","device_path":"/var/lib/x/volume-1"}`,
		`{"driver_volume_type":"local","data":{"device_path":"/dev/sdb"}}`,
		`{"driver_volume_type":"iscsi","data":{"target_lun":1}}`,
		`null`, `[]`, `{"device_path":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ci, err := parseConnectionInfo(raw)
		if err != nil {
			return
		}
		if _, ok := connectors[ci.Type]; !ok || !json.Valid(ci.Data) {
			t.Fatalf("accepted %q as %+v", raw, ci)
		}
		if dev, err := connect(context.Background(), raw); err == nil && ci.Type == "local" && (dev.String() == "" || dev.String()[0] != '/') {
			t.Fatalf("connected %q as %v", raw, dev)
		}
	})
}
