package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/vddk"
	"github.com/cairnhq/cairn/vddk/libvix"
)

// SettingTransport picks how disks are read: "auto" (the default: HTTPS
// datastore ranges, falling back to an NFC export for disks HTTPS cannot
// read), "https", "nfc" (whole-disk exports) or "libvix" (VMware's VDDK;
// needs a build with -tags vddk and a SHA-1 thumbprint).
const SettingTransport = "transport"

func checkTransport(name string) error {
	switch name {
	case "", "auto", "https", "nfc", "libvix":
		return nil
	}
	return fmt.Errorf("transport %q: want auto, https, nfc or libvix: %w", name, plugins.ErrInvalid)
}

// transports returns the transports to try, in order.
func (cfg Config) transports(c *conn) ([]vddk.Transport, error) {
	https := &vddk.HTTPS{Client: c.vim()}
	nfc := &vddk.NFC{Client: c.vim()}
	switch cfg.Transport {
	case "", "auto":
		return []vddk.Transport{https, nfc}, nil
	case "https":
		return []vddk.Transport{https}, nil
	case "nfc":
		return []vddk.Transport{nfc}, nil
	case "libvix":
		pin, err := parseThumbprint(cfg.Thumbprint)
		if err != nil || len(pin) != 20 {
			return nil, fmt.Errorf("the libvix transport needs the server's SHA-1 thumbprint: %w", plugins.ErrInvalid)
		}
		u, _ := url.Parse(cfg.URL)
		host, port := u.Hostname(), uint64(0)
		if p := u.Port(); p != "" {
			port, _ = strconv.ParseUint(p, 10, 32)
		}
		return []vddk.Transport{libvix.New(libvix.Config{Server: host, Port: uint32(port), Thumbprint: colonHex(pin),
			User: cfg.User, Password: cfg.Password, Identity: "cairn"})}, nil
	}
	return nil, checkTransport(cfg.Transport)
}

// openDisk opens ref with the first transport that can read it.
func openDisk(ctx context.Context, ts []vddk.Transport, ref vddk.DiskRef) (vddk.Disk, error) {
	var refused []string
	for _, t := range ts {
		d, err := t.Open(ctx, ref)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, vddk.ErrUnsupportedBacking) {
			return nil, fmt.Errorf("%s transport: %w", t.Name(), err)
		}
		refused = append(refused, fmt.Sprintf("%s: %v", t.Name(), err))
	}
	return nil, fmt.Errorf("no transport can read the disk (%s): %w", strings.Join(refused, "; "), vddk.ErrUnsupportedBacking)
}
