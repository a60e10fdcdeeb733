package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/plugins/openstack"
)

func newSourceAddOpenStackCmd(a *app) *cobra.Command {
	settings := map[string]*string{}
	var noauth bool
	var appCredSecretFile, passwordFile string
	cmd := &cobra.Command{
		Use:   "openstack NAME (--cloud CLOUD | --auth-url URL ... | --noauth --volume-endpoint URL --project P)",
		Short: "Add the Cinder volumes of an OpenStack project",
		Long: `Add an "openstack" source: the Cinder volumes of one project. Cairn
authenticates with Keystone v3, either through a cloud of clouds.yaml
(--cloud, with --clouds-file or the usual search path on the appliance) or
with --auth-url and an application credential (--application-credential-id
and --application-credential-secret-file) or a user (--username and
--password-file, with --project-name or --project-id). --region, --interface
and --ca-file override clouds.yaml. For a Cinder without Keystone (tests,
standalone Cinder) give --noauth --volume-endpoint URL --project PROJECT.

Each backup snapshots the volume (forced when attached), attaches a volume
made from the snapshot to the appliance through the Cinder attachments API
(as host --host, default the appliance's host name) and reads it; the
snapshot is kept as the base of the next backup. Secrets are read from files
and stored sealed; they are never shown again.`,
		Example: `  cairn source add openstack prod --cloud prod --clouds-file /etc/openstack/clouds.yaml
  cairn source add openstack prod --auth-url https://keystone:5000/v3 \
      --application-credential-id 4f1c... --application-credential-secret-file ac.secret
  cairn source add openstack lab --noauth --volume-endpoint http://127.0.0.1:8776/v3 --project admin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			config := map[string]string{}
			for k, v := range settings {
				if *v != "" {
					config[k] = *v
				}
			}
			if noauth {
				config[openstack.SetNoAuth] = "true"
			}
			for _, k := range []string{openstack.SetCloudsFile, openstack.SetCAFile} {
				if p := config[k]; p != "" {
					abs, err := filepath.Abs(p)
					if err != nil {
						return usage(err)
					}
					config[k] = abs
				}
			}
			secrets := map[string]string{}
			for k, file := range map[string]string{openstack.SecretAppCred: appCredSecretFile, openstack.SecretPassword: passwordFile} {
				if file == "" {
					continue
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return usagef("read the secret: %v", err)
				}
				if s := strings.TrimRight(string(b), "\r\n"); s != "" {
					secrets[k] = s
				} else {
					return usagef("%s is empty", file)
				}
			}
			if _, err := openstack.ParseConfig(config, secrets); err != nil {
				return usage(err)
			}
			return a.addSource(cmd, api.AddSourceRequest{Name: args[0], Kind: openstack.Name, Config: config, Secrets: secrets})
		},
	}
	f := cmd.Flags()
	for _, fl := range []struct{ key, help string }{
		{openstack.SetCloud, "cloud name in clouds.yaml"},
		{openstack.SetCloudsFile, "clouds.yaml on the appliance (default: ./clouds.yaml, ~/.config/openstack, /etc/openstack)"},
		{openstack.SetAuthURL, "Keystone v3 URL"},
		{openstack.SetAppCredID, "application credential ID"},
		{openstack.SetAppCredName, "application credential name (with --username)"},
		{openstack.SetUsername, "user name"},
		{openstack.SetUserDomain, "the user's domain name"},
		{openstack.SetProjectID, "project ID to scope a user's token to"},
		{openstack.SetProjectName, "project name to scope a user's token to"},
		{openstack.SetProjectDomain, "the project's domain name"},
		{openstack.SetRegion, "region of the block-storage endpoint"},
		{openstack.SetInterface, "endpoint interface: public, internal or admin"},
		{openstack.SetCAFile, "CA certificates (PEM) on the appliance to verify Keystone and Cinder"},
		{openstack.SetVolumeEndpoint, "with --noauth: Cinder's v3 URL without the project"},
		{openstack.SetProject, "with --noauth: the project ID in Cinder's URLs"},
		{openstack.SetHost, "connector host name the appliance attaches volumes as (default: its host name)"},
	} {
		settings[fl.key] = f.String(fl.key, "", fl.help)
	}
	f.BoolVar(&noauth, "noauth", false, "talk to a Cinder without Keystone")
	f.StringVar(&appCredSecretFile, "application-credential-secret-file", "", "file holding the application credential's secret")
	f.StringVar(&passwordFile, "password-file", "", "file holding the user's password")
	return cmd
}
