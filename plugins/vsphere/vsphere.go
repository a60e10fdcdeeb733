// Package vsphere is Cairn's plugin for VMware vSphere (vCenter or ESXi),
// through govmomi, backing up VMs the way VADP products do.
//
// A Source lists VMs (with inventory path, power state, disks and tags) and
// opens one as a Snapshot: it removes snapshots an earlier crashed run left
// (named "cairn-backup-..."), enables changed-block tracking if it is off,
// takes a snapshot (quiesced when VMware Tools run: application-consistent;
// otherwise crash-consistent) and reads each disk's changeId from the
// snapshot's hardware. A Disk's Changes pages QueryChangedDiskAreas (the
// next startOffset is StartOffset+Length of the reply, until the capacity)
// from the base's changeId ("cbt", a delta), or with "*" for the allocated
// areas when there is no base, the base has no changeId, the capacity
// changed, or vSphere refuses the base's changeId (CBT was reset): then the
// read is a full read of the allocated areas and the job says why. Disks are
// read through a vddk transport (SettingTransport: HTTPS datastore ranges,
// falling back to an NFC export, by default). Close
// removes the snapshot whatever happened, logging in again if the session
// expired. The snapshot's Describe saves the VM's configuration (VMConfig).
//
// A Target restores a restore point into the vSphere source named by the
// destination ("vsphere:SOURCE"): to a new VM built from the saved
// configuration with its disks uploaded through the datastore (option
// "vm-name", default NAME-restored), or with option "in-place"="true" onto
// the original VM's disks, which must be powered off and without snapshots.
// Finish returns {"vm": name, "vm_id": moref}.
package vsphere

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/cairnhq/cairn/plugins"
)

// Settings and secret names of a vsphere source.
const (
	SettingURL        = "url"
	SettingUser       = "user"
	SettingThumbprint = "thumbprint"
	SettingCAFile     = "ca-file"
	SettingDatacenter = "datacenter"
	SecretPassword    = "password"
)

// Config says how to reach vCenter or ESXi.
type Config struct {
	URL        string // https://HOST[/sdk]
	User       string
	Password   string // never logged nor put in errors
	Thumbprint string // SHA-1 or SHA-256 of the server certificate, hex with or without colons
	CAFile     string // PEM bundle to verify the server with
	Datacenter string // inventory path; empty for the only one
	Transport  string // see SettingTransport
}

// Kind wires the plugin: sources have settings url, user, thumbprint or
// ca-file, datacenter (optional) and the secret password; a restore
// destination is "vsphere:SOURCE".
func Kind() plugins.Kind {
	return plugins.Kind{Name: "vsphere", NewSource: newSource, NewTarget: newTarget}
}

func configOf(sc plugins.SourceConfig) Config {
	return Config{
		URL: sc.Settings[SettingURL], User: sc.Settings[SettingUser], Password: sc.Secrets[SecretPassword],
		Thumbprint: sc.Settings[SettingThumbprint], CAFile: sc.Settings[SettingCAFile],
		Datacenter: sc.Settings[SettingDatacenter], Transport: sc.Settings[SettingTransport],
	}
}

func newSource(_ context.Context, sc plugins.SourceConfig) (plugins.Source, error) {
	return New(configOf(sc))
}

// check validates the configuration without contacting the server.
func (c Config) check() (*url.URL, error) {
	if c.URL == "" || c.User == "" {
		return nil, fmt.Errorf("a vsphere source needs a url and a user: %w", plugins.ErrInvalid)
	}
	if c.Password == "" {
		return nil, fmt.Errorf("a vsphere source needs a password: %w", plugins.ErrInvalid)
	}
	raw := c.URL
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("url %q is not a vCenter or ESXi address: %w", c.URL, plugins.ErrInvalid)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: only https is supported: %w", c.URL, plugins.ErrInvalid)
	}
	if u.User != nil {
		return nil, fmt.Errorf("url: put the user in the user setting and the password in a secret, not in the url: %w", plugins.ErrInvalid)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	if c.Thumbprint != "" {
		if _, err := parseThumbprint(c.Thumbprint); err != nil {
			return nil, err
		}
	}
	if err := checkTransport(c.Transport); err != nil {
		return nil, err
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return nil, fmt.Errorf("ca-file: %w: %w", err, plugins.ErrInvalid)
		}
	}
	return u, nil
}

// parseThumbprint returns the raw digest of a SHA-1 or SHA-256 thumbprint.
func parseThumbprint(s string) ([]byte, error) {
	h := strings.NewReplacer(":", "", " ", "").Replace(s)
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != sha1.Size && len(b) != sha256.Size) {
		return nil, fmt.Errorf("thumbprint %q is neither a SHA-1 nor a SHA-256 digest in hex: %w", s, plugins.ErrInvalid)
	}
	return b, nil
}

// pinned returns a TLS config that accepts only the certificate whose
// digest is pin: vCenter's own certificates are usually self-signed.
func pinned(pin []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			raw := cs.PeerCertificates[0].Raw
			var got []byte
			if len(pin) == sha1.Size {
				s := sha1.Sum(raw)
				got = s[:]
			} else {
				s := sha256.Sum256(raw)
				got = s[:]
			}
			if !strings.EqualFold(hex.EncodeToString(got), hex.EncodeToString(pin)) {
				return fmt.Errorf("server certificate thumbprint %s does not match the pinned one", colonHex(got))
			}
			return nil
		},
	}
}

func colonHex(b []byte) string {
	var parts []string
	for _, x := range b {
		parts = append(parts, fmt.Sprintf("%02X", x))
	}
	return strings.Join(parts, ":")
}

// conn is a logged-in session with the datacenter found.
type conn struct {
	c      *govmomi.Client
	finder *find.Finder
	dc     *object.Datacenter
}

func (c *conn) vim() *vim25.Client { return c.c.Client }

// logout ends the session; errors do not matter to the caller.
func (c *conn) logout(ctx context.Context) { _ = c.c.Logout(context.WithoutCancel(ctx)) }

// connect logs in.
func (cfg Config) connect(ctx context.Context) (*conn, error) {
	u, err := cfg.check()
	if err != nil {
		return nil, err
	}
	sc := soap.NewClient(u, false)
	switch {
	case cfg.Thumbprint != "":
		pin, _ := parseThumbprint(cfg.Thumbprint)
		t := sc.DefaultTransport()
		t.DialTLSContext = nil
		t.TLSClientConfig = pinned(pin)
	case cfg.CAFile != "":
		if err := sc.SetRootCAs(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("load ca-file %s: %w", cfg.CAFile, err)
		}
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Host, err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(cfg.User, cfg.Password)); err != nil {
		return nil, fmt.Errorf("log in to %s as %s: %w", u.Host, cfg.User, err)
	}
	f := find.NewFinder(vc)
	dc, err := f.DatacenterOrDefault(ctx, cfg.Datacenter)
	if err != nil {
		_ = c.Logout(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("datacenter %q: %w", cfg.Datacenter, err)
	}
	f.SetDatacenter(dc)
	return &conn{c: c, finder: f, dc: dc}, nil
}
