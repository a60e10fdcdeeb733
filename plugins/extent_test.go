package plugins

import (
	"cmp"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseExtents(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Extent
	}{
		{"empty", "", []Extent{}},
		{"comments and blanks", "# changed\n\n   \n  # indented comment\n", []Extent{}},
		{"one", "4096 512\n", []Extent{{4096, 512}}},
		{"no final newline", "0 1", []Extent{{0, 1}}},
		{"tabs and crlf", "10\t20\r\n  100   5  \r\n", []Extent{{10, 20}, {100, 5}}},
		{"sorted", "0 10\n20 10\n", []Extent{{0, 10}, {20, 10}}},
		{"unsorted", "20 10\n0 10\n", []Extent{{0, 10}, {20, 10}}},
		{"adjacent merged", "0 10\n10 10\n20 5\n", []Extent{{0, 25}}},
		{"overlap merged", "0 10\n5 20\n", []Extent{{0, 25}}},
		{"contained", "0 100\n10 5\n", []Extent{{0, 100}}},
		{"unsorted overlap", "50 10\n0 10\n5 50\n", []Extent{{0, 60}}},
		{"zero length skipped", "7 0\n100 1\n", []Extent{{100, 1}}},
		{"leading zeros", "0010 002\n", []Extent{{10, 2}}},
		{"largest", "0 9223372036854775807\n", []Extent{{0, math.MaxInt64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtents(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseExtents: %v", err)
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseExtents = %#v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseExtentsErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"one field", "# x\n10\n", "line 2: want OFFSET LENGTH, got 1 fields"},
		{"three fields", "1 2 3\n", "line 1: want OFFSET LENGTH, got 3 fields"},
		{"trailing comment", "1 2 # x\n", "line 1: want OFFSET LENGTH, got 4 fields"},
		{"negative offset", "0 1\n-5 10\n", "line 2: offset -5 is negative"},
		{"negative length", "5 -10\n", "line 1: length -10 is negative"},
		{"plus sign", "+5 10\n", `line 1: offset "+5" is not a decimal number`},
		{"hex", "0x10 10\n", `line 1: offset "0x10" is not a decimal number`},
		{"float", "1 1.5\n", `line 1: length "1.5" is not a decimal number`},
		{"lone minus", "- 1\n", `line 1: offset "-" is not a decimal number`},
		{"offset overflow", "9223372036854775808 1\n", "line 1: offset 9223372036854775808 is larger than a 64-bit byte count"},
		{"length overflow", "1 99999999999999999999\n", "line 1: length 99999999999999999999 is larger"},
		{"end overflow", "9223372036854775807 1\n", "line 1: offset 9223372036854775807 + length 1 overflows"},
		{"line too long", "0 1\n" + strings.Repeat("#", maxExtentLine+1) + "\n", "line 2: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtents(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseExtents = %v, want error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseExtentsReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("0 1\n"), iotest.ErrReader(boom))
	if _, err := ParseExtents(r); !errors.Is(err, boom) {
		t.Errorf("ParseExtents error = %v, want it to wrap %v", err, boom)
	}
}

// limitedLines yields n lines "i*step 1" without holding them in memory.
type limitedLines struct {
	n, step, i int64
	buf        []byte
}

func (l *limitedLines) Read(p []byte) (int, error) {
	for len(l.buf) < len(p) && l.i < l.n {
		l.buf = strconv.AppendInt(l.buf, l.i*l.step, 10)
		l.buf = append(l.buf, " 1\n"...)
		l.i++
	}
	if len(l.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}

func TestParseExtentsCap(t *testing.T) {
	defer func(n int) { extentCap = n }(extentCap)
	extentCap = 1000
	// Adjacent lines merge as they stream in and never reach the cap.
	got, err := ParseExtents(&limitedLines{n: 5000, step: 1})
	if err != nil || !slices.Equal(got, []Extent{{0, 5000}}) {
		t.Fatalf("adjacent lines: ParseExtents = %v, %v; want one extent", got, err)
	}
	got, err = ParseExtents(&limitedLines{n: 1000, step: 2})
	if err != nil || len(got) != 1000 {
		t.Fatalf("1000 distinct lines: got %d extents, %v; want 1000", len(got), err)
	}
	_, err = ParseExtents(&limitedLines{n: 1001, step: 2})
	want := "line 1001: more than 1000 distinct extents"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("distinct lines: error %v, want %q", err, want)
	}
}

func TestNormalizeExtents(t *testing.T) {
	tests := []struct {
		name     string
		in       []Extent
		capacity int64
		want     []Extent
		err      string
	}{
		{"nil", nil, 100, nil, ""},
		{"empty stays non-nil", []Extent{}, 100, []Extent{}, ""},
		{"sorted merged", []Extent{{50, 10}, {0, 10}, {10, 5}, {55, 20}}, 100, []Extent{{0, 15}, {50, 25}}, ""},
		{"empty ranges dropped", []Extent{{5, 0}, {100, 0}}, 100, []Extent{}, ""},
		{"up to capacity", []Extent{{90, 10}}, 100, []Extent{{90, 10}}, ""},
		{"past capacity", []Extent{{0, 1}, {90, 11}}, 100, nil, "extent 1 (offset 90, length 11) ends past the disk's capacity 100"},
		{"offset past capacity", []Extent{{101, 0}}, 100, nil, "ends past the disk's capacity 100"},
		{"huge length", []Extent{{10, math.MaxInt64}}, 100, nil, "ends past"},
		{"negative offset", []Extent{{-1, 5}}, 100, nil, "extent 0 (offset -1, length 5): negative"},
		{"negative length", []Extent{{1, -5}}, 100, nil, "negative"},
		{"negative capacity", nil, -1, nil, "negative capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got, err := NormalizeExtents(in, tt.capacity)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("NormalizeExtents error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeExtents: %v", err)
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("NormalizeExtents = %#v, want %#v", got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("NormalizeExtents modified its input: %v, was %v", in, tt.in)
			}
		})
	}
}

func FuzzParseExtents(f *testing.F) {
	for _, s := range []string{
		"", "0 1\n", "10 5\n0 10\n", "# c\n\n1 1\n1 1\n", "5 0\n", "-1 3\n", "1 2 3\n",
		"9223372036854775807 0\n", "9223372036854775806 1\n", "0 10\n2 3\n15 1\n14 1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseExtents(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for i, e := range got {
			if e.Offset < 0 || e.Length <= 0 || e.End() < e.Offset {
				t.Fatalf("extent %d %v is empty, negative or overflows", i, e)
			}
			if i > 0 && e.Offset <= got[i-1].End() {
				t.Fatalf("extents %v and %v overlap, touch or are unsorted", got[i-1], e)
			}
		}
		// Every range the input listed lies inside one extent, and the listed
		// ranges cover every extent without a gap.
		var listed []Extent
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			off, err1 := strconv.ParseInt(f[0], 10, 64)
			n, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("ParseExtents accepted line %q", line)
			}
			if n == 0 {
				continue
			}
			e := Extent{off, n}
			listed = append(listed, e)
			i, _ := slices.BinarySearchFunc(got, off, func(x Extent, off int64) int {
				return cmp.Compare(x.End(), off+1)
			})
			if i == len(got) || got[i].Offset > e.Offset || got[i].End() < e.End() {
				t.Fatalf("listed range %v not covered by %v", e, got)
			}
		}
		slices.SortFunc(listed, func(a, b Extent) int { return cmp.Compare(a.Offset, b.Offset) })
		j := 0
		for _, e := range got {
			reach := e.Offset
			for ; j < len(listed) && listed[j].Offset < e.End(); j++ {
				if listed[j].Offset > reach {
					t.Fatalf("extent %v covers [%d, %d), which no line listed", e, reach, listed[j].Offset)
				}
				reach = max(reach, listed[j].End())
			}
			if reach != e.End() {
				t.Fatalf("extent %v covers [%d, %d), which no line listed", e, reach, e.End())
			}
		}
	})
}
