// Command cairn is the command-line client of a Cairn appliance: it adds
// sources, runs and lists backups, restores, verifies and follows jobs
// through the appliance's REST API. Exit codes are listed in exit.go and
// docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	fd := int(os.Stderr.Fd())
	a := newApp(os.Stdout, os.Stderr,
		func() bool { return term.IsTerminal(fd) },
		func() int {
			if w, _, err := term.GetSize(fd); err == nil && w > 0 {
				return w
			}
			return 80
		})
	code := run(ctx, a, os.Args[1:])
	stop()
	os.Exit(code)
}
