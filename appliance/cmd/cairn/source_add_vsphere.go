package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/appliance/api"
)

func newSourceAddVsphereCmd(a *app) *cobra.Command {
	var url, user, passwordFile, thumbprint, caFile, datacenter, transport string
	cmd := &cobra.Command{
		Use:   "vsphere NAME --url URL --user USER --password-file FILE [--thumbprint T | --ca-file F]",
		Short: "Add a vCenter or ESXi host",
		Long: `Add a "vsphere" source: a vCenter Server or ESXi host whose VMs are backed
up with changed-block tracking. The password is read from --password-file
(the first line), sent once and stored sealed. Pin the server's certificate
with --thumbprint (SHA-1 or SHA-256, as vCenter shows it) or verify it with
--ca-file; without either, the system's CAs must trust it. --datacenter
picks one datacenter when the server has several.`,
		Example: "  cairn source add vsphere vc1 --url https://vc1.example.com --user backup@vsphere.local \\\n" +
			"      --password-file /root/vc1.pass --thumbprint 3F:2A:...:9C",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" || user == "" || passwordFile == "" {
				return usagef("--url, --user and --password-file are required")
			}
			if thumbprint != "" && caFile != "" {
				return usagef("give --thumbprint or --ca-file, not both")
			}
			password, err := readVspherePassword(passwordFile)
			if err != nil {
				return usage(err)
			}
			cfg := map[string]string{"url": url, "user": user}
			for k, v := range map[string]string{"thumbprint": thumbprint, "ca-file": caFile, "datacenter": datacenter, "transport": transport} {
				if v != "" {
					cfg[k] = v
				}
			}
			return a.addSource(cmd, api.AddSourceRequest{Name: args[0], Kind: "vsphere", Config: cfg,
				Secrets: map[string]string{"password": password}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "vCenter or ESXi address, https://HOST[/sdk]")
	f.StringVar(&user, "user", "", "user name, e.g. backup@vsphere.local")
	f.StringVar(&passwordFile, "password-file", "", "file whose first line is the password")
	f.StringVar(&thumbprint, "thumbprint", "", "SHA-1 or SHA-256 thumbprint of the server certificate")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed the server certificate (a path on the appliance)")
	f.StringVar(&datacenter, "datacenter", "", "datacenter inventory path, when there are several")
	f.StringVar(&transport, "transport", "", "how disks are read: auto (default: https, else nfc), https, nfc, or libvix (VDDK builds)")
	return cmd
}

// readVspherePassword returns the first line of a password file.
func readVspherePassword(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("password file %s is empty", name)
	}
	return line, nil
}
