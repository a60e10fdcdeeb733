package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairnhq/cairn/appliance/api"
)

// Environment variables behind the global flags. CAIRN_TOKEN names the
// token file, as --token-file does; it does not hold the token.
const (
	envServer = "CAIRN_SERVER"
	envCA     = "CAIRN_CA"
	envToken  = "CAIRN_TOKEN"
)

// run executes the CLI and returns its exit code; errors are printed as
// one line on stderr.
func run(ctx context.Context, a *app, args []string) int {
	root := newRoot(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !a.started && !errors.As(err, &ee) {
		err = usage(err) // cobra's own flag and argument errors
	}
	if errors.As(err, &ee) && ee.code == exitUsage && ee.hint == "" && cmd != nil {
		ee.hint = "see " + cmd.CommandPath() + " --help"
	}
	fmt.Fprintln(a.stderr, "cairn: "+message(err))
	return exitCode(err)
}

// newRoot builds the command tree. Every command is wired here, explicitly.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Command-line client of a Cairn backup appliance",
		Long: `cairn talks to a Cairn appliance's REST API over HTTPS.

By default it reaches a cairnd started in the current directory: the server
https://127.0.0.1:8443, its CA ./cairn-data/ca.pem and its admin token
./cairn-data/admin.token. Flags override the environment (CAIRN_SERVER,
CAIRN_CA, CAIRN_TOKEN), which overrides the defaults.`,
		Version:           api.Version(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.setup,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", defaultServer, "URL of the appliance's API (env "+envServer+")")
	pf.StringVar(&a.ca, "ca", defaultCA, "CA certificate to trust: the appliance's ca.pem; empty for the system's roots (env "+envCA+")")
	pf.StringVar(&a.tokenFile, "token-file", defaultTokenFile, "file holding the API token (env "+envToken+", the file's path)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")

	source := group("source", "Add and list sources to back up from")
	source.AddCommand(newSourceAddCmd(a), newSourceListCmd(a))
	object := group("object", "List what a source can protect")
	object.AddCommand(newObjectListCmd(a))
	backup := group("backup", "Run backups and inspect restore points")
	backup.AddCommand(newBackupRunCmd(a), newBackupListCmd(a), newBackupShowCmd(a), newBackupDeleteCmd(a))
	job := group("job", "List, show and cancel jobs")
	job.AddCommand(newJobListCmd(a), newJobShowCmd(a), newJobCancelCmd(a))
	cluster := group("cluster", "Join nodes, show the cluster and remove nodes")
	cluster.AddCommand(newClusterJoinTokenCmd(a), newClusterStatusCmd(a), newClusterRemoveCmd(a))
	gc := group("gc", "Collect garbage: reclaim the space of deleted restore points")
	gc.AddCommand(newGCRunCmd(a))
	pol := group("policy", "Create, list and assign backup policies")
	pol.AddCommand(newPolicyCreateCmd(a), newPolicyListCmd(a), newPolicyAssignCmd(a))
	root.AddCommand(source, object, backup, newRestoreCmd(a), newVerifyCmd(a), job, cluster, gc, pol, newPruneCmd(a))
	root.AddCommand(newReportCmd(a))
	return root
}

// group returns a command that only holds subcommands: alone it shows its
// help; with an unknown subcommand it is a usage error.
func group(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// setup resolves the global settings: a flag given on the command line
// beats the environment, which beats the default.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	a.resolve(flags, "server", envServer, &a.server)
	a.caFrom = a.resolve(flags, "ca", envCA, &a.ca)
	a.tokenFrom = a.resolve(flags, "token-file", envToken, &a.tokenFile)
	if a.output != "text" && a.output != "json" {
		return usagef("--output %q: want text or json", a.output)
	}
	a.started = true
	return nil
}

// resolve applies the environment to a flag not given, and says where the
// value came from.
func (a *app) resolve(flags *pflag.FlagSet, name, env string, value *string) string {
	if flags.Changed(name) {
		return "from --" + name
	}
	if v := a.getenv(env); v != "" {
		*value = v
		return "from " + env
	}
	return "the default; set --" + name + " or " + env
}

// checkServer validates the server URL before anything is sent to it.
func (a *app) checkServer() error {
	u, err := url.Parse(a.server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return usagef("server %q: want https://HOST[:PORT]", a.server)
	}
	return nil
}
