// Package libvix reads vSphere snapshot disks with VMware's libvixDiskLib
// (VDDK) over the transports it offers: NBDSSL, HotAdd and SAN.
//
// The binding is compiled only with the vddk build tag and VMware's VDDK
// headers and library installed (by default under
// /usr/local/vmware-vix-disklib-distrib; CGO_CFLAGS and CGO_LDFLAGS can point
// elsewhere). Without the tag, Open returns vddk.ErrNotBuilt, so Cairn builds
// and tests without VMware's library.
package libvix

// Config says how to reach vCenter or ESXi through VDDK.
type Config struct {
	Server     string // vCenter or ESXi host name
	Port       uint32 // 0 for 443
	Thumbprint string // SHA-1 thumbprint of the server certificate, "AA:BB:..."
	User       string
	Password   string // never logged
	// Transports is VDDK's transport list in order of preference, e.g.
	// "nbdssl:nbd", "hotadd", "san"; empty lets VDDK choose.
	Transports string
	LibDir     string // VDDK's lib64 directory; empty for the default
	ConfigFile string // VDDK configuration file; empty for none
	// Identity names Cairn to PrepareForAccess/EndAccess, which keep
	// vSphere from migrating the VM while its disks are read.
	Identity string
}

// Name is "libvix".
func (l *LibVix) Name() string { return "libvix" }

// New returns a transport using cfg.
func New(cfg Config) *LibVix { return &LibVix{cfg: cfg} }
