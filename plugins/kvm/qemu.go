package kvm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/cairnhq/cairn/plugins/nbd"
	"github.com/cairnhq/cairn/plugins/nbd/qemunbd"
)

// Tools names the QEMU programs the plugin runs; empty fields mean the ones
// on PATH.
type Tools struct {
	QemuImg string // qemu-img
	QemuNBD string // qemu-nbd
	// TempDir holds the private folders of qemu-nbd's sockets; "" is the
	// system's temporary folder.
	TempDir string
}

func (t Tools) img() string { return or(t.QemuImg, "qemu-img") }
func (t Tools) nbd() string { return or(t.QemuNBD, "qemu-nbd") }
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// qemuImg runs qemu-img and returns its standard output; a failure carries
// the tool's own message.
func (t Tools) qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.img(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("qemu-img %s: %s", args[0], msg)
	}
	return out, nil
}

// imageInfo is what `qemu-img info --output=json` says about an image.
type imageInfo struct {
	VirtualSize    int64  `json:"virtual-size"`
	Format         string `json:"format"`
	FormatSpecific struct {
		Type string `json:"type"`
		Data struct {
			Compat  string   `json:"compat"`
			Corrupt bool     `json:"corrupt"`
			Bitmaps []bitmap `json:"bitmaps"`
		} `json:"data"`
	} `json:"format-specific"`
}

type bitmap struct {
	Name        string   `json:"name"`
	Flags       []string `json:"flags"`
	Granularity int64    `json:"granularity"`
}

// usable reports whether the bitmap recorded every write since it was added:
// it is enabled ("auto") and was not left "in-use" by a QEMU that stopped
// without saving it.
func (b bitmap) usable() bool {
	enabled := false
	for _, f := range b.Flags {
		switch f {
		case "in-use":
			return false
		case "auto":
			enabled = true
		}
	}
	return enabled
}

// parseInfo decodes qemu-img info's JSON.
func parseInfo(out []byte) (*imageInfo, error) {
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("decode qemu-img info: %w", err)
	}
	if info.Format == "" || info.VirtualSize < 0 {
		return nil, fmt.Errorf("decode qemu-img info: no format or a negative size")
	}
	return &info, nil
}

// info reads the image's metadata. Without -U qemu-img takes QEMU's image
// lock, so an image a running VM holds is refused here.
func (t Tools) info(ctx context.Context, path string) (*imageInfo, error) {
	out, err := t.qemuImg(ctx, "info", "--output=json", path)
	if err != nil {
		return nil, err
	}
	return parseInfo(out)
}

// serve starts qemu-nbd with args (the image last) and connects to it.
func (t Tools) serve(ctx context.Context, opts nbd.Options, args ...string) (*qemunbd.Server, *nbd.Client, error) {
	return qemunbd.Start(ctx, qemunbd.Config{Program: t.nbd(), TempDir: t.TempDir, Args: args}, opts)
}
