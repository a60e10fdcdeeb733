package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// wantJSON reports whether -o json was asked for.
func (a *app) wantJSON() bool { return a.output == "json" }

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listJSON writes a list, [] rather than null when empty.
func listJSON[T any](a *app, list []T) error {
	if list == nil {
		list = []T{}
	}
	return a.printJSON(list)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields writes "Key: value" lines with the values aligned, skipping empty
// values.
type fields struct{ tw *tabwriter.Writer }

func newFields(w io.Writer) *fields {
	return &fields{tw: tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)}
}

func (f *fields) add(key, value string) {
	if value != "" {
		fmt.Fprintf(f.tw, "%s:\t%s\n", key, value)
	}
}

func (f *fields) flush() error { return f.tw.Flush() }

// humanBytes formats a byte count with binary units: 512 B, 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= unit
		if v < unit && v > -unit || u == "PiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// when formats a time in the local zone; the zero time is empty.
func (a *app) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(a.loc).Format("2006-01-02 15:04:05 MST")
}

// seconds formats a duration for people: 850ms, 12s, 3m05s, 2h04m.
func seconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// percent formats done of total; empty while the total is unknown.
func percent(done, total int64) string {
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf("%d%%", done*100/total)
}
