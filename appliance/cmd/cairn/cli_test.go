package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api/apitest"
)

// result is what one run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// cliOpts tune a test run.
type cliOpts struct {
	env   map[string]string
	tty   bool
	width int
}

// runCLI runs the whole CLI in-process, with env as its environment.
func runCLI(ctx context.Context, o cliOpts, args ...string) result {
	var stdout, stderr bytes.Buffer
	width := o.width
	if width == 0 {
		width = 80
	}
	a := newApp(&stdout, &stderr, func() bool { return o.tty }, func() int { return width })
	a.getenv = func(k string) string { return o.env[k] }
	a.pollMin, a.pollMax = time.Millisecond, 2*time.Millisecond
	clock := time.Date(2025, 11, 1, 10, 0, 0, 0, time.UTC)
	a.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	a.loc = time.UTC
	code := run(ctx, a, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// env points the CLI at a test server through the environment.
func env(srv *apitest.Server) map[string]string {
	return map[string]string{
		envServer: srv.URL,
		envCA:     filepath.Join(srv.Dir, "ca.pem"),
		envToken:  filepath.Join(srv.Dir, "admin.token"),
	}
}

// cli runs the CLI against srv.
func cli(t *testing.T, srv *apitest.Server, args ...string) result {
	t.Helper()
	return runCLI(context.Background(), cliOpts{env: env(srv)}, args...)
}

// ok runs the CLI and fails the test unless it exits 0.
func ok(t *testing.T, srv *apitest.Server, args ...string) result {
	t.Helper()
	r := cli(t, srv, args...)
	if r.code != 0 {
		t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs the CLI and checks its exit code and its one-line error.
func fails(t *testing.T, srv *apitest.Server, code int, want string, args ...string) result {
	t.Helper()
	return failsWith(t, runCLI(context.Background(), cliOpts{env: env(srv)}, args...), code, want, args...)
}

func failsWith(t *testing.T, r result, code int, want string, args ...string) result {
	t.Helper()
	if r.code != code {
		t.Errorf("cairn %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, code, r.stderr)
	}
	last := lastLine(r.stderr)
	if !strings.HasPrefix(last, "cairn: ") || !strings.Contains(last, want) {
		t.Errorf("cairn %s: last stderr line %q, want \"cairn: ...%s...\"", strings.Join(args, " "), last, want)
	}
	return r
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// image writes a file of size bytes into dir and returns its path.
func image(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withSource starts a server with a file source "web" of a 1 MiB image.
func withSource(t *testing.T) *apitest.Server {
	t.Helper()
	srv := apitest.NewServer(t)
	ok(t, srv, "source", "add", "file", "web", "--path", image(t, 1<<20))
	return srv
}

// jsonObject decodes a JSON object and checks it has the given fields.
func jsonObject(t *testing.T, s string, fields ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, s)
	}
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("JSON output lacks %q: %s", f, s)
		}
	}
	return m
}

func jsonList(t *testing.T, s string) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, s)
	}
	return l
}

// column returns the offset of word in line, to check table alignment.
func column(t *testing.T, line, word string) int {
	t.Helper()
	i := strings.Index(line, word)
	if i < 0 {
		t.Fatalf("%q not in %q", word, line)
	}
	return i
}
