package vddk

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Descriptor is what the transports need from a VMDK text descriptor.
type Descriptor struct {
	CreateType string
	ParentCID  string // "ffffffff" for a disk without a parent
	Encrypted  bool   // an encryption key safe is present
	Extents    []DescriptorExtent
}

// DescriptorExtent is one extent line: `RW 2097152 VMFS "disk-flat.vmdk"`.
type DescriptorExtent struct {
	Access  string
	Sectors int64
	Type    string // FLAT, VMFS, SPARSE, VMFSSPARSE, SESPARSE, VSANSPARSE, ...
	File    string
	Offset  int64 // in sectors, for FLAT extents
}

// maxDescriptor bounds a descriptor file; real ones are a few hundred bytes.
const maxDescriptor = 64 << 10

// ParseDescriptor parses a VMDK text descriptor.
func ParseDescriptor(text []byte) (*Descriptor, error) {
	if len(text) > maxDescriptor {
		return nil, fmt.Errorf("vmdk descriptor: %d bytes, more than %d", len(text), maxDescriptor)
	}
	if len(text) >= 4 && string(text[:4]) == "KDMV" {
		return nil, fmt.Errorf("vmdk descriptor: file is a binary sparse extent, not a descriptor")
	}
	d := &Descriptor{}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(s, "="); ok && !strings.HasPrefix(s, "RW ") && !strings.HasPrefix(s, "RDONLY ") && !strings.HasPrefix(s, "NOACCESS ") {
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			switch {
			case k == "createType":
				d.CreateType = v
			case k == "parentCID":
				d.ParentCID = v
			case strings.HasPrefix(k, "encryption."):
				d.Encrypted = true
			}
			continue
		}
		e, err := parseExtentLine(s)
		if err != nil {
			return nil, fmt.Errorf("vmdk descriptor line %d: %w", line, err)
		}
		d.Extents = append(d.Extents, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vmdk descriptor: %w", err)
	}
	if d.CreateType == "" {
		return nil, fmt.Errorf("vmdk descriptor: no createType")
	}
	return d, nil
}

// parseExtentLine parses `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
func parseExtentLine(s string) (DescriptorExtent, error) {
	var e DescriptorExtent
	head, rest, quoted := strings.Cut(s, `"`)
	f := strings.Fields(head)
	if len(f) != 3 {
		return e, fmt.Errorf("extent %q: want ACCESS SECTORS TYPE \"FILE\"", s)
	}
	switch f[0] {
	case "RW", "RDONLY", "NOACCESS":
	default:
		return e, fmt.Errorf("extent %q: unknown access %q", s, f[0])
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 || n > 1<<54 {
		return e, fmt.Errorf("extent %q: bad sector count", s)
	}
	e.Access, e.Sectors, e.Type = f[0], n, strings.ToUpper(f[2])
	if quoted {
		name, tail, ok := strings.Cut(rest, `"`)
		if !ok || name == "" {
			return e, fmt.Errorf("extent %q: unterminated file name", s)
		}
		e.File = name
		if t := strings.TrimSpace(tail); t != "" {
			off, err := strconv.ParseInt(t, 10, 64)
			if err != nil || off < 0 || off > 1<<54 {
				return e, fmt.Errorf("extent %q: bad offset", s)
			}
			e.Offset = off
		}
	} else if e.Type != "ZERO" {
		return e, fmt.Errorf("extent %q: no file name", s)
	}
	return e, nil
}

// flatExtent returns the single flat extent of a descriptor the HTTPS
// transport can read, or why not.
func (d *Descriptor) flatExtent() (DescriptorExtent, error) {
	switch {
	case d.Encrypted:
		return DescriptorExtent{}, fmt.Errorf("disk is encrypted: %w", ErrUnsupportedBacking)
	}
	// The create type, not parentCID, tells a delta: deltas are
	// vmfsSparse, seSparse or vsanSparse, while some writers (vcsim) put
	// 00000000 rather than ffffffff in a base's parentCID.
	switch d.CreateType {
	case "vmfs", "monolithicFlat", "vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick":
	default:
		return DescriptorExtent{}, fmt.Errorf("disk format %s is not a flat extent: %w", d.CreateType, ErrUnsupportedBacking)
	}
	if len(d.Extents) != 1 {
		return DescriptorExtent{}, fmt.Errorf("disk has %d extents, want one flat extent: %w", len(d.Extents), ErrUnsupportedBacking)
	}
	e := d.Extents[0]
	if e.Type != "VMFS" && e.Type != "FLAT" {
		return DescriptorExtent{}, fmt.Errorf("extent type %s is not flat: %w", e.Type, ErrUnsupportedBacking)
	}
	return e, nil
}
