package lvm

import (
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/plugins"
)

// realDelta is what thin_delta 0.9.0 printed for two devices on metadata
// made with thin_restore (see cbt-sources.md).
const realDelta = `<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="1024">
  <diff left="1" right="2">
    <same begin="0" length="4"/>
    <different begin="4" length="1"/>
    <left_only begin="7" length="1"/>
    <right_only begin="12" length="1"/>
  </diff>
</superblock>
`

func TestParseDelta(t *testing.T) {
	d, err := ParseDelta(strings.NewReader(realDelta))
	if err != nil {
		t.Fatal(err)
	}
	if d.BlockSize != 64<<10 || d.Left != 1 || d.Right != 2 {
		t.Errorf("block size %d, left %d, right %d; want 65536, 1, 2", d.BlockSize, d.Left, d.Right)
	}
	if want := []blockRange{{4, 1}, {7, 1}, {12, 1}}; !slices.Equal(d.Changed, want) {
		t.Errorf("Changed = %v, want %v", d.Changed, want)
	}
	if want := []blockRange{{0, 4}}; !slices.Equal(d.Same, want) {
		t.Errorf("Same = %v, want %v", d.Same, want)
	}
	// Adjacent ranges of any changed kind merge; same ranges stay apart.
	d, err = ParseDelta(strings.NewReader(`<?xml version="1.0"?><superblock data_block_size="256"><diff left="3" right="3">` +
		`<different begin="0" length="2"/><right_only begin="2" length="1"/><left_only begin="3" length="1"/>` +
		`<same begin="9" length="1"/><same begin="10" length="2"/></diff></superblock>`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Changed, []blockRange{{0, 4}}) || !slices.Equal(d.Same, []blockRange{{9, 3}}) || d.BlockSize != 128<<10 {
		t.Errorf("merged: %+v", d)
	}
	// An empty diff is no change.
	d, err = ParseDelta(strings.NewReader(`<superblock data_block_size="128"><diff left="1" right="2"></diff></superblock>`))
	if err != nil || len(d.Changed) != 0 || len(d.Same) != 0 {
		t.Errorf("empty diff: %+v, %v", d, err)
	}
}

func TestParseDeltaErrors(t *testing.T) {
	wrap := func(ranges string) string {
		return `<superblock data_block_size="128"><diff left="1" right="2">` + ranges + `</diff></superblock>`
	}
	tests := []struct{ name, in, want string }{
		{"empty", "", "no <superblock>"},
		{"no diff", `<superblock data_block_size="128"></superblock>`, "no <diff>"},
		{"truncated", `<superblock data_block_size="128"><diff left="1" right="2">`, "unexpected EOF"},
		{"other root", `<blocks/>`, "unexpected element <blocks>"},
		{"two diffs", `<superblock data_block_size="128"><diff left="1" right="2"/><diff left="1" right="2"/></superblock>`, "unexpected element <diff>"},
		{"verbose range", wrap(`<range begin="0" data_begin="4" length="1"/>`), "unexpected element <range>"},
		{"range outside diff", `<superblock data_block_size="128"><same begin="0" length="1"/></superblock>`, "unexpected element <same>"},
		{"nested", wrap(`<same begin="0" length="1"><same begin="1" length="1"/></same>`), "unexpected element <same> at depth 3"},
		{"text", wrap(`hello`), `unexpected text "hello"`},
		{"no block size", `<superblock><diff left="1" right="2"/></superblock>`, "<superblock> has no data_block_size"},
		{"small block size", `<superblock data_block_size="8"><diff left="1" right="2"/></superblock>`, "data_block_size 8 sectors"},
		{"odd block size", `<superblock data_block_size="192"><diff left="1" right="2"/></superblock>`, "data_block_size 192 sectors"},
		{"huge block size", `<superblock data_block_size="4194304"><diff left="1" right="2"/></superblock>`, "data_block_size 4194304"},
		{"no left", `<superblock data_block_size="128"><diff right="2"/></superblock>`, "<diff> has no left"},
		{"negative", wrap(`<same begin="-1" length="1"/>`), `begin="-1"> is not a decimal number`},
		{"hex", wrap(`<different begin="0x1" length="1"/>`), "is not a decimal number"},
		{"empty number", wrap(`<different begin="" length="1"/>`), "is not a 64-bit count"},
		{"overflow", wrap(`<different begin="99999999999999999999" length="1"/>`), "is not a 64-bit count"},
		{"past any disk", wrap(`<different begin="144115188075855871" length="1"/>`), "lies past any disk"},
		{"zero length", wrap(`<different begin="1" length="0"/>`), "has length 0"},
		{"repeated attribute", wrap(`<different begin="1" begin="2" length="1"/>`), "<different> repeats begin"},
		{"overlap", wrap(`<same begin="0" length="4"/><different begin="3" length="1"/>`), "overlaps or precedes"},
		{"unsorted", wrap(`<different begin="5" length="1"/><left_only begin="1" length="1"/>`), "overlaps or precedes"},
		{"directive", `<!DOCTYPE x><superblock data_block_size="128"><diff left="1" right="2"/></superblock>`, "unexpected directive"},
		{"bad xml", `<superblock data_block_size="128"><diff left="1" right="2"></superblock>`, "element <diff> closed by </superblock>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDelta(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseDelta = %+v, %v; want an error containing %q", d, err, tt.want)
			}
		})
	}
}

func TestExtents(t *testing.T) {
	const bs = 64 << 10
	got := extents([]blockRange{{0, 2}, {10, 1}, {15, 10}, {40, 1}}, bs, 20*bs+100)
	want := []plugins.Extent{{Offset: 0, Length: 2 * bs}, {Offset: 10 * bs, Length: bs}, {Offset: 15 * bs, Length: 5*bs + 100}}
	if !slices.Equal(got, want) {
		t.Errorf("extents = %v, want %v (clipped at the capacity)", got, want)
	}
	if got := extents(nil, bs, 100); got == nil || len(got) != 0 {
		t.Errorf("extents(nil) = %#v, want empty and not nil", got)
	}
}

const realLVs = `  {
      "report": [
          {
              "lv": [
                  {"lv_name":"pool", "vg_name":"vg0", "lv_attr":"twi-aotz--", "lv_size":"104857600", "pool_lv":"", "thin_id":"", "origin":""},
                  {"lv_name":"data", "vg_name":"vg0", "lv_attr":"Vwi-a-tz--", "lv_size":"1073741824", "pool_lv":"pool", "thin_id":"1", "origin":""},
                  {"lv_name":"data.cairn-src.1", "vg_name":"vg0", "lv_attr":"Vwi---tz-k", "lv_size":"1073741824", "pool_lv":"pool", "thin_id":"2", "origin":"data"},
                  {"lv_name":"root", "vg_name":"vg0", "lv_attr":"-wi-ao----", "lv_size":"8388608", "pool_lv":"", "thin_id":"", "origin":""}
              ]
          }
      ]
  }
`

func TestParseVolumes(t *testing.T) {
	vols, err := ParseVolumes([]byte(realLVs))
	if err != nil {
		t.Fatal(err)
	}
	want := []Volume{
		{Name: "pool", VG: "vg0", Attr: "twi-aotz--", Size: 104857600, ThinID: -1},
		{Name: "data", VG: "vg0", Attr: "Vwi-a-tz--", Size: 1 << 30, Pool: "pool", ThinID: 1},
		{Name: "data.cairn-src.1", VG: "vg0", Attr: "Vwi---tz-k", Size: 1 << 30, Pool: "pool", ThinID: 2, Origin: "data"},
		{Name: "root", VG: "vg0", Attr: "-wi-ao----", Size: 8 << 20, ThinID: -1},
	}
	if !slices.Equal(vols, want) {
		t.Fatalf("ParseVolumes = %+v\nwant %+v", vols, want)
	}
	var thin []string
	for _, v := range vols {
		if v.Thin() {
			thin = append(thin, v.Name)
		}
	}
	if !slices.Equal(thin, []string{"data", "data.cairn-src.1"}) {
		t.Errorf("thin volumes %q", thin)
	}
	if !cairnSnapshot(vols[2]) || cairnSnapshot(vols[1]) {
		t.Error("cairnSnapshot does not tell Cairn's snapshot from its origin")
	}
}

func TestParseVolumesErrors(t *testing.T) {
	row := func(kv string) string { return `{"report":[{"lv":[{` + kv + `}]}]}` }
	full := `"lv_name":"a","vg_name":"v","lv_attr":"V","pool_lv":"p","origin":""`
	tests := []struct{ name, in, want string }{
		{"not json", `lvs: command not found`, "lvs report: invalid character"},
		{"no report", `{}`, `no "report" array`},
		{"missing column", row(`"lv_name":"a","vg_name":"v"`), "volume 0: no lv_attr"},
		{"bad size", row(full + `,"lv_size":"12B","thin_id":"1"`), `lv_size "12B" is not a byte count`},
		{"negative size", row(full + `,"lv_size":"-1","thin_id":"1"`), "is not a byte count"},
		{"bad thin id", row(full + `,"lv_size":"1","thin_id":"x"`), `thin_id "x" is not a device ID`},
		{"empty name", row(`"lv_name":"","vg_name":"v","lv_attr":"","lv_size":"1","pool_lv":"","thin_id":"","origin":""`), "empty lv_name"},
		{"trailing data", row(full+`,"lv_size":"1","thin_id":"1"`) + `{}`, "data after the JSON document"},
		{"number not string", row(full + `,"lv_size":1,"thin_id":"1"`), "cannot unmarshal number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVolumes([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseVolumes = %+v, %v; want an error containing %q", v, err, tt.want)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	c, err := ParseSettings("nightly", map[string]string{"vg": "vg0", "lv": "data"})
	if err != nil || c != (Config{Source: "nightly", VG: "vg0", LV: "data"}) {
		t.Fatalf("ParseSettings = %+v, %v", c, err)
	}
	tests := []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{}, "no volume group (vg)"},
		{map[string]string{"vg": "vg0", "path": "/dev/x"}, `unknown setting "path"`},
		{map[string]string{"vg": "--all"}, `starts with '-'`},
		{map[string]string{"vg": "vg0", "lv": "a b"}, "has a character other than"},
		{map[string]string{"vg": "vg0", "lv": ".."}, "is reserved"},
		{map[string]string{"vg": strings.Repeat("v", 128)}, "longer than 127"},
	}
	for _, tt := range tests {
		if _, err := ParseSettings("s", tt.settings); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSettings(%v) error %v, want %q", tt.settings, err, tt.want)
		}
	}
}

func TestDeviceMapperNames(t *testing.T) {
	if got := poolDevice("my-vg", "thin-pool"); got != "my--vg-thin--pool-tpool" {
		t.Errorf("poolDevice = %q", got)
	}
	if got := dmName("vg", "pool_tmeta"); got != "vg-pool_tmeta" {
		t.Errorf("dmName = %q", got)
	}
}

func TestExec(t *testing.T) {
	out, err := Exec(t.Context(), "sh", "-c", "echo report")
	if err != nil || string(out) != "report\n" {
		t.Fatalf("Exec = %q, %v", out, err)
	}
	_, err = Exec(t.Context(), "sh", "-c", "echo half; echo '  Volume group \"vg0\" not found' >&2; exit 5")
	want := `sh -c echo half; echo '  Volume group "vg0" not found' >&2; exit 5: exit status 5: Volume group "vg0" not found`
	if err == nil || err.Error() != want {
		t.Fatalf("Exec error %v, want %q", err, want)
	}
}
