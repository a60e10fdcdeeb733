package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/appliance/api/apitest"
)

func TestExitCodes(t *testing.T) {
	srv := apitest.NewServer(t)
	other := apitest.NewServer(t) // another appliance: another CA, another token
	gone := apitest.NewServer(t)
	gone.Close()
	dir := t.TempDir()
	emptyToken := filepath.Join(dir, "empty.token")
	os.WriteFile(emptyToken, []byte("\n"), 0o600)

	with := func(changes map[string]string) map[string]string {
		e := env(srv)
		for k, v := range changes {
			e[k] = v
		}
		return e
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"ok", env(srv), []string{"source", "list"}, exitOK, ""},
		{"unknown flag", env(srv), []string{"source", "list", "--bogus"}, exitUsage, "unknown flag: --bogus (see cairn source list --help)"},
		{"missing argument", env(srv), []string{"backup", "show"}, exitUsage, "accepts 1 arg(s)"},
		{"extra argument", env(srv), []string{"source", "list", "x"}, exitUsage, "unknown command"},
		{"unknown command", env(srv), []string{"bakcup"}, exitUsage, `unknown command "bakcup"`},
		{"unknown subcommand", env(srv), []string{"backup", "start"}, exitUsage, `unknown command "start" for "cairn backup"`},
		{"bad output", env(srv), []string{"source", "list", "-o", "yaml"}, exitUsage, `--output "yaml"`},
		{"plain http", with(map[string]string{envServer: "http://" + strings.TrimPrefix(srv.URL, "https://")}), []string{"source", "list"}, exitUsage, "want https://"},
		{"server gone", with(map[string]string{envServer: gone.URL}), []string{"source", "list"}, exitConnect, "cannot connect"},
		{"unknown CA", with(map[string]string{envCA: filepath.Join(other.Dir, "ca.pem")}), []string{"source", "list"}, exitConnect, "is --ca the appliance's ca.pem?"},
		{"no CA file", with(map[string]string{envCA: filepath.Join(dir, "none.pem")}), []string{"source", "list"}, exitConnect, "from CAIRN_CA"},
		{"CA file not PEM", with(map[string]string{envCA: emptyToken}), []string{"source", "list"}, exitConnect, "no PEM certificate"},
		{"wrong token", with(map[string]string{envToken: filepath.Join(other.Dir, "admin.token")}), []string{"source", "list"}, exitUnauthorized, "missing or invalid API token"},
		{"empty token file", with(map[string]string{envToken: emptyToken}), []string{"source", "list"}, exitUnauthorized, "is empty"},
		{"no token file", with(map[string]string{envToken: filepath.Join(dir, "none.token")}), []string{"source", "list"}, exitUnauthorized, "does not exist"},
		{"not found", env(srv), []string{"job", "show", "job-nope"}, exitNotFound, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(context.Background(), cliOpts{env: tt.env}, tt.args...)
			if tt.code == exitOK {
				if r.code != 0 {
					t.Errorf("exit %d: %s", r.code, r.stderr)
				}
				return
			}
			failsWith(t, r, tt.code, tt.want, tt.args...)
			if n := strings.Count(r.stderr, "\n"); n != 1 {
				t.Errorf("error took %d lines: %q", n, r.stderr)
			}
		})
	}
}

// TestTokenNotEchoed covers a token put in CAIRN_TOKEN by mistake: the
// error explains the variable and does not print its value.
func TestTokenNotEchoed(t *testing.T) {
	srv := apitest.NewServer(t)
	e := env(srv)
	e[envToken] = srv.Token
	r := runCLI(context.Background(), cliOpts{env: e}, "source", "list")
	failsWith(t, r, exitUnauthorized, "holds the path of the token file, not the token", "source", "list")
	if strings.Contains(r.stderr, srv.Token) {
		t.Errorf("the token was echoed: %q", r.stderr)
	}
}

func TestFlagsBeatEnvironment(t *testing.T) {
	srv := apitest.NewServer(t)
	other := apitest.NewServer(t)
	gone := apitest.NewServer(t)
	gone.Close()

	bad := env(srv)
	bad[envServer] = gone.URL
	bad[envCA] = filepath.Join(other.Dir, "ca.pem")
	bad[envToken] = filepath.Join(other.Dir, "admin.token")
	args := []string{"source", "list",
		"--server", srv.URL, "--ca", filepath.Join(srv.Dir, "ca.pem"), "--token-file", filepath.Join(srv.Dir, "admin.token")}
	if r := runCLI(context.Background(), cliOpts{env: bad}, args...); r.code != 0 {
		t.Errorf("flags did not override the environment: exit %d: %s", r.code, r.stderr)
	}
	for _, flag := range []struct{ name, value string }{
		{"--server", gone.URL},
		{"--ca", filepath.Join(other.Dir, "ca.pem")},
		{"--token-file", filepath.Join(other.Dir, "admin.token")},
	} {
		r := runCLI(context.Background(), cliOpts{env: env(srv)}, "source", "list", flag.name, flag.value)
		if r.code == 0 {
			t.Errorf("%s %s ignored in favour of the environment", flag.name, flag.value)
		}
	}
}

// TestDefaults runs in a directory holding cairn-data, as next to a cairnd
// started without flags: only the server's port differs from the default.
func TestDefaults(t *testing.T) {
	srv := apitest.NewServer(t)
	dir := t.TempDir()
	if err := os.Symlink(srv.Dir, filepath.Join(dir, "cairn-data")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	r := runCLI(context.Background(), cliOpts{env: map[string]string{}}, "source", "list", "--server", srv.URL)
	if r.code != 0 {
		t.Errorf("defaults: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(context.Background(), cliOpts{env: map[string]string{}}, "source", "list")
	if r.code != exitConnect || !strings.Contains(r.stderr, "127.0.0.1:8443") {
		t.Errorf("default server: exit %d: %s", r.code, r.stderr)
	}
}

func TestHelpAndGroups(t *testing.T) {
	for _, args := range [][]string{{}, {"backup"}, {"--help"}, {"backup", "run", "--help"}} {
		r := runCLI(context.Background(), cliOpts{env: map[string]string{}}, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("cairn %v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}
