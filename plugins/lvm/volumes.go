package lvm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Volume is one logical volume as lvs reports it.
type Volume struct {
	Name   string
	VG     string
	Attr   string
	Size   int64  // bytes
	Pool   string // the thin pool of a thin volume
	ThinID int64  // the thin device ID of a thin volume; -1 otherwise
	Origin string // what a snapshot was taken of
}

// Thin reports whether v is a thin volume (lv_attr type 'V' in a pool).
func (v Volume) Thin() bool {
	return strings.HasPrefix(v.Attr, "V") && v.Pool != "" && v.ThinID >= 0
}

// maxVolumes bounds one lvs report; a VG holds far fewer.
const maxVolumes = 100_000

// lvsReport is lvs --reportformat json. Every value is a string.
type lvsReport struct {
	Report []struct {
		LV []map[string]string `json:"lv"`
	} `json:"report"`
}

// ParseVolumes reads the report of
//
//	lvs --reportformat json --units b --nosuffix --options lv_name,vg_name,lv_attr,lv_size,pool_lv,thin_id,origin VG
//
// which looks like {"report":[{"lv":[{"lv_name":"data","vg_name":"vg0",
// "lv_attr":"Vwi-a-tz--","lv_size":"1073741824","pool_lv":"pool",
// "thin_id":"1","origin":""}]}]}. Every column must be present; sizes and
// thin IDs must be decimal; other keys (such as "log") are ignored.
func ParseVolumes(b []byte) ([]Volume, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var r lvsReport
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("lvs report: %w", err)
	}
	if dec.More() {
		return nil, errors.New("lvs report: data after the JSON document")
	}
	if r.Report == nil {
		return nil, errors.New(`lvs report: no "report" array`)
	}
	var out []Volume
	for _, rep := range r.Report {
		for i, row := range rep.LV {
			if len(out) >= maxVolumes {
				return nil, fmt.Errorf("lvs report: more than %d volumes", maxVolumes)
			}
			v, err := parseVolume(row)
			if err != nil {
				return nil, fmt.Errorf("lvs report: volume %d: %w", i, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func parseVolume(row map[string]string) (Volume, error) {
	for _, k := range strings.Split(volumeFields, ",") {
		if _, ok := row[k]; !ok {
			return Volume{}, fmt.Errorf("no %s", k)
		}
	}
	v := Volume{Name: row["lv_name"], VG: row["vg_name"], Attr: row["lv_attr"], Pool: row["pool_lv"], Origin: row["origin"], ThinID: -1}
	if v.Name == "" || v.VG == "" {
		return Volume{}, errors.New("empty lv_name or vg_name")
	}
	size, err := strconv.ParseInt(row["lv_size"], 10, 64)
	if err != nil || size < 0 {
		return Volume{}, fmt.Errorf("%s: lv_size %q is not a byte count", v.Name, truncate(row["lv_size"]))
	}
	v.Size = size
	if s := row["thin_id"]; s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 0 {
			return Volume{}, fmt.Errorf("%s: thin_id %q is not a device ID", v.Name, truncate(s))
		}
		v.ThinID = id
	}
	return v, nil
}
