package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
)

// Defaults point at a cairnd started with no flags in the current directory.
const (
	defaultServer    = "https://127.0.0.1:8443"
	defaultCA        = "./cairn-data/ca.pem"
	defaultTokenFile = "./cairn-data/admin.token"
)

// app is everything a command needs from the outside world, so that tests
// run the whole CLI in-process.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTerminal and termWidth describe stderr, where progress goes.
	isTerminal func() bool
	termWidth  func() int
	now        func() time.Time
	loc        *time.Location // for times shown as text
	// pollMin and pollMax bound how often a followed job is read.
	pollMin, pollMax time.Duration
	// lineEvery is how often progress lines are written when stderr is not
	// a terminal.
	lineEvery time.Duration

	// Global flags, after flag > environment > default resolution.
	server, ca, tokenFile, output string
	// Where each setting came from, for error messages.
	caFrom, tokenFrom string
	// started is set once a command's own code runs; an error before that
	// came from cobra's flag or argument parsing, a usage error.
	started bool
}

// newApp returns an app on the process's real stdout, stderr and
// environment.
func newApp(stdout, stderr io.Writer, isTerminal func() bool, termWidth func() int) *app {
	return &app{
		stdout:     stdout,
		stderr:     stderr,
		getenv:     os.Getenv,
		isTerminal: isTerminal,
		termWidth:  termWidth,
		now:        time.Now,
		loc:        time.Local,
		pollMin:    250 * time.Millisecond,
		pollMax:    time.Second,
		lineEvery:  5 * time.Second,
	}
}

// client returns an API client from the global settings.
func (a *app) client() (*api.Client, error) {
	if err := a.checkServer(); err != nil {
		return nil, err
	}
	var caPEM []byte
	if a.ca != "" {
		data, err := os.ReadFile(a.ca)
		if err != nil {
			return nil, &exitError{code: exitConnect, err: fmt.Errorf("CA file %s: %w (%s)", a.ca, unwrapPath(err), a.caFrom)}
		}
		caPEM = data
	}
	token, err := a.token()
	if err != nil {
		return nil, &exitError{code: exitUnauthorized, err: err}
	}
	c, err := api.NewClient(a.server, caPEM, token)
	if err != nil { // the URL was checked with the flags: this is the CA
		return nil, &exitError{code: exitConnect, err: fmt.Errorf("%w: %s", err, a.ca)}
	}
	return c, nil
}

// token reads the token file. A value from CAIRN_TOKEN that names no file
// is not echoed: it may be a token put there by mistake.
func (a *app) token() (string, error) {
	data, err := os.ReadFile(a.tokenFile)
	if errors.Is(err, fs.ErrNotExist) && a.tokenFrom == "from "+envToken {
		return "", fmt.Errorf("the token file named by %s does not exist (%s holds the path of the token file, not the token)", envToken, envToken)
	}
	if err != nil {
		return "", fmt.Errorf("token file %s: %w (%s)", a.tokenFile, unwrapPath(err), a.tokenFrom)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", a.tokenFile)
	}
	return tok, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
