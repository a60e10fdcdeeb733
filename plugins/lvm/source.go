package lvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/plugins"
)

// Settings a source record holds.
const (
	SettingVG = "vg"
	SettingLV = "lv"
)

// Config is one configured LVM source.
type Config struct {
	// Source is the source's name; it is part of every snapshot name, so two
	// sources protecting one volume keep separate snapshots.
	Source string
	VG     string
	// LV, when set, is the only volume the source protects; otherwise every
	// thin volume of VG is an object.
	LV string
}

// ParseSettings builds a Config from a source record's settings.
func ParseSettings(source string, settings map[string]string) (Config, error) {
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if k != SettingVG && k != SettingLV {
			return Config{}, fmt.Errorf("lvm source: unknown setting %q (want %s and optionally %s)", k, SettingVG, SettingLV)
		}
	}
	c := Config{Source: source, VG: settings[SettingVG], LV: settings[SettingLV]}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.VG == "" {
		return errors.New("lvm source: no volume group (vg)")
	}
	if err := validName(c.VG); err != nil {
		return fmt.Errorf("lvm source: volume group: %w", err)
	}
	if c.LV != "" {
		if err := validName(c.LV); err != nil {
			return fmt.Errorf("lvm source: logical volume: %w", err)
		}
	}
	if err := validName(c.Source); err != nil {
		return fmt.Errorf("lvm source: source name: %w", err)
	}
	return nil
}

// maxName is the longest VG or LV name LVM accepts.
const maxName = 127

// validName accepts what LVM accepts as a VG or LV name, which also keeps a
// name from being read as a command-line option.
func validName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > maxName:
		return fmt.Errorf("name %.16q... is longer than %d characters", s, maxName)
	case s == "." || s == "..":
		return fmt.Errorf("name %q is reserved", s)
	case s[0] == '-':
		return fmt.Errorf("name %q starts with '-'", s)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("name %q has a character other than a-z, A-Z, 0-9, '+', '_', '.' and '-'", s)
		}
	}
	return nil
}

// Device is an open snapshot device.
type Device interface {
	io.ReaderAt
	io.Closer
}

// Options are a Source's collaborators.
type Options struct {
	// LVM runs the commands; default a CLI running them with Exec.
	LVM LVM
	// Open opens a device for reading; default os.Open.
	Open func(path string) (Device, error)
	// OpenWrite opens a device for a restore to write; default
	// os.OpenFile for writing.
	OpenWrite func(path string) (WriteDevice, error)
}

// Source protects the thin volumes of one volume group.
type Source struct {
	cfg  Config
	lvm  LVM
	open func(string) (Device, error)
}

var _ plugins.Source = (*Source)(nil)

// New returns a source for cfg.
func New(cfg Config, opts Options) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, lvm: opts.LVM, open: opts.Open}
	if s.lvm == nil {
		s.lvm = &CLI{Run: Exec}
	}
	if s.open == nil {
		s.open = func(p string) (Device, error) { return os.Open(p) }
	}
	return s, nil
}

// ObjectKind is the kind of every object this plugin lists.
const ObjectKind = "thin-volume"

// Objects lists the thin volumes the source protects.
func (s *Source) Objects(ctx context.Context) ([]plugins.Object, error) {
	vols, err := s.lvm.Volumes(ctx, s.cfg.VG)
	if err != nil {
		return nil, err
	}
	var out []plugins.Object
	for _, v := range vols {
		if !s.protects(v) {
			continue
		}
		out = append(out, plugins.Object{Name: v.Name, Kind: ObjectKind, Size: v.Size, Disks: 1,
			Info: map[string]string{"vg": v.VG, "pool": v.Pool, "thin_id": strconv.FormatInt(v.ThinID, 10)}})
	}
	if s.cfg.LV != "" && len(out) == 0 {
		return nil, fmt.Errorf("lvm source %s: %s/%s is not a thin volume: %w", s.cfg.Source, s.cfg.VG, s.cfg.LV, plugins.ErrNotFound)
	}
	return out, nil
}

// protects reports whether v is one of the source's objects: a thin volume
// of the VG, the configured one if any, and not a snapshot Cairn made.
func (s *Source) protects(v Volume) bool {
	return v.Thin() && v.VG == s.cfg.VG && (s.cfg.LV == "" || v.Name == s.cfg.LV) && !cairnSnapshot(v)
}

// Snapshot names are ORIGIN.cairn-SOURCE.SEQ, SEQ counting up per origin and
// source; '.' and '-' are both allowed in LV names.
func snapshotPrefix(origin, source string) string { return origin + ".cairn-" + source + "." }

// cairnSnapshot reports whether v is a snapshot some Cairn source made.
func cairnSnapshot(v Volume) bool {
	rest, ok := strings.CutPrefix(v.Name, v.Origin+".cairn-")
	if v.Origin == "" || !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	_, ok = seqOf(rest[i+1:])
	return i > 0 && ok
}

// seqOf parses a snapshot's sequence number: decimal, positive, no leading
// zero.
func seqOf(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// ours lists this source's snapshots of origin with their sequence numbers.
func (s *Source) ours(vols []Volume, origin string) map[string]int64 {
	prefix := snapshotPrefix(origin, s.cfg.Source)
	out := map[string]int64{}
	for _, v := range vols {
		rest, ok := strings.CutPrefix(v.Name, prefix)
		if !ok || v.Origin != origin {
			continue
		}
		if seq, ok := seqOf(rest); ok {
			out[v.Name] = seq
		}
	}
	return out
}

// nextName names a new snapshot of origin after the highest existing one.
func (s *Source) nextName(vols []Volume, origin string) (string, error) {
	var last int64
	for _, seq := range s.ours(vols, origin) {
		last = max(last, seq)
	}
	name := snapshotPrefix(origin, s.cfg.Source) + strconv.FormatInt(last+1, 10)
	if err := validName(name); err != nil {
		return "", fmt.Errorf("name a snapshot of %s/%s: %w (use a shorter source name)", s.cfg.VG, origin, err)
	}
	return name, nil
}

func find(vols []Volume, name string) (Volume, bool) {
	i := slices.IndexFunc(vols, func(v Volume) bool { return v.Name == name })
	if i < 0 {
		return Volume{}, false
	}
	return vols[i], true
}

// Open takes a thin snapshot of the volume, activates it and opens its
// device. Whatever fails, nothing it made is left behind.
func (s *Source) Open(ctx context.Context, object string, opts plugins.OpenOptions) (plugins.Snapshot, error) {
	if opts.ChangedExtents != nil {
		return nil, fmt.Errorf("lvm source: a changed-extent list: %w (thin_delta finds the changes)", plugins.ErrUnsupported)
	}
	vols, err := s.lvm.Volumes(ctx, s.cfg.VG)
	if err != nil {
		return nil, err
	}
	origin, ok := find(vols, object)
	if !ok || !s.protects(origin) {
		return nil, fmt.Errorf("lvm source %s: %s/%s is not a thin volume it protects: %w", s.cfg.Source, s.cfg.VG, object, plugins.ErrNotFound)
	}
	name, err := s.nextName(vols, origin.Name)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{src: s, origin: origin, name: name}
	if err := s.lvm.CreateSnapshot(ctx, s.cfg.VG, origin.Name, name); err != nil {
		// lvcreate may fail after the volume exists (activation, udev).
		return nil, errors.Join(err, snap.removeIfExists(ctx))
	}
	if err := snap.start(ctx); err != nil {
		return nil, errors.Join(err, snap.Close(ctx))
	}
	return snap, nil
}

// poolLocks serialises metadata snapshots per pool within this process: the
// kernel holds at most one per pool, so two backups of volumes in one pool
// take turns instead of failing.
var poolLocks sync.Map // "vg/pool" → *sync.Mutex

func poolLock(vg, pool string) *sync.Mutex {
	m, _ := poolLocks.LoadOrStore(vg+"/"+pool, new(sync.Mutex))
	return m.(*sync.Mutex)
}
