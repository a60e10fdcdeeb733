// Command bench measures Cairn against real cairnd processes and prints the
// figures as a Markdown report. Every goal is a ratio measured within the
// same run, because these machines are noisy:
//
//	(a) ingest of a 2 GiB high-entropy image as a fraction of the machine's
//	    crypto limit (every core computing HMAC-SHA-256 and AES-256-GCM over
//	    the same bytes) — goal ≥ 0.5;
//	(b) an 8 GiB sparse OS image: a full backup and a 1% incremental;
//	(c) restore throughput;
//	(d) cairnd's peak RSS — goal ≤ 256 MiB whatever the disk size.
//
// Usage: go run ./tests/bench [-out docs/benchmarks.md] [-work DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "", "also write the report to this file")
	work := flag.String("work", os.TempDir(), "folder for images, restores and the on-disk data directory (needs ~16 GiB free)")
	shm := flag.String("shm", "/dev/shm", "a tmpfs folder for the in-memory data directory of (a); empty to skip")
	only := flag.String("only", "", "run only (a) ingest or (b) os; empty runs both")
	flag.Parse()
	if err := run(*out, *work, *shm, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(out, work, shm, only string) error {
	dir, err := os.MkdirTemp(work, "cairn-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h, err := newHarness(dir)
	if err != nil {
		return err
	}
	var r report
	r.title("Cairn benchmarks")
	r.line("Measured by `make bench` (`go run ./tests/bench`) on %s, %s.", host(), time.Now().UTC().Format("2006-01-02"))
	r.line("Every goal is a ratio of figures taken in the same run.")

	if only == "" || only == "ingest" {
		if err := h.ingest(&r, shm, dir); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if only == "" || only == "os" {
		if err := h.osImage(&r, dir); err != nil {
			return fmt.Errorf("os image: %w", err)
		}
	}
	text := r.String()
	fmt.Print(text)
	if out != "" {
		return os.WriteFile(out, []byte(text), 0o644)
	}
	return nil
}

type report struct{ strings.Builder }

func (r *report) title(s string)          { fmt.Fprintf(r, "# %s\n\n", s) }
func (r *report) section(s string)        { fmt.Fprintf(r, "\n## %s\n\n", s) }
func (r *report) line(f string, a ...any) { fmt.Fprintf(r, f+"\n", a...) }
func (r *report) row(cells ...string)     { fmt.Fprintf(r, "| %s |\n", strings.Join(cells, " | ")) }
func (r *report) header(cells ...string) {
	r.row(cells...)
	sep := make([]string, len(cells))
	for i := range sep {
		sep[i] = "---"
	}
	r.row(sep...)
}

func mbps(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/d.Seconds()/1e6)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func host() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	n, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*")
	return fmt.Sprintf("%s, %d CPUs", cpu, len(n))
}
