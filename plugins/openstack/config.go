package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/cairnhq/cairn/plugins"
)

// Setting keys of a source record (plugins.SourceConfig.Settings).
const (
	SetCloud          = "cloud"       // a cloud name in clouds.yaml
	SetCloudsFile     = "clouds-file" // that clouds.yaml; default: the usual search path
	SetAuthURL        = "auth-url"    // Keystone v3
	SetAppCredID      = "application-credential-id"
	SetAppCredName    = "application-credential-name"
	SetUsername       = "username"
	SetUserDomain     = "user-domain-name"
	SetProjectID      = "project-id"
	SetProjectName    = "project-name"
	SetProjectDomain  = "project-domain-name"
	SetRegion         = "region"
	SetInterface      = "interface" // public, internal or admin
	SetCAFile         = "ca-file"
	SetNoAuth         = "noauth"          // "true": Cinder without Keystone
	SetVolumeEndpoint = "volume-endpoint" // noauth: http://HOST:8776/v3
	SetProject        = "project"         // noauth: the project in URLs
	SetHost           = "host"            // the appliance's connector host name
)

// Secret keys (plugins.SourceConfig.Secrets).
const (
	SecretAppCred  = "application-credential-secret"
	SecretPassword = "password"
)

// Microversion is the Block Storage API version the plugin speaks: 3.44
// has the attachments API with attachment complete.
const Microversion = "3.44"

// requestTimeout bounds one API request, so a hung API is an error.
const requestTimeout = 60 * time.Second

// Config says how to reach Cinder and as whom. Its String never shows a
// secret.
type Config struct {
	Cloud, CloudsFile string

	AuthURL, AppCredID, AppCredName       string
	Username, UserDomain                  string
	ProjectID, ProjectName, ProjectDomain string
	Region, Interface, CAFile             string
	appCredSecret, password               string
	NoAuth                                bool
	VolumeEndpoint, Project               string
	Host                                  string
}

// ParseConfig checks a source's settings and secrets. Errors wrap
// plugins.ErrInvalid and never quote a secret.
func ParseConfig(settings, secrets map[string]string) (Config, error) {
	known := map[string]bool{}
	for _, k := range []string{SetCloud, SetCloudsFile, SetAuthURL, SetAppCredID, SetAppCredName, SetUsername,
		SetUserDomain, SetProjectID, SetProjectName, SetProjectDomain, SetRegion, SetInterface, SetCAFile,
		SetNoAuth, SetVolumeEndpoint, SetProject, SetHost} {
		known[k] = true
	}
	for k := range settings {
		if !known[k] {
			return Config{}, fmt.Errorf("openstack source: unknown setting %q: %w", k, plugins.ErrInvalid)
		}
	}
	for k := range secrets {
		if k != SecretAppCred && k != SecretPassword {
			return Config{}, fmt.Errorf("openstack source: unknown secret %q: %w", k, plugins.ErrInvalid)
		}
	}
	s := settings
	c := Config{
		Cloud: s[SetCloud], CloudsFile: s[SetCloudsFile],
		AuthURL: s[SetAuthURL], AppCredID: s[SetAppCredID], AppCredName: s[SetAppCredName],
		Username: s[SetUsername], UserDomain: s[SetUserDomain],
		ProjectID: s[SetProjectID], ProjectName: s[SetProjectName], ProjectDomain: s[SetProjectDomain],
		Region: s[SetRegion], Interface: s[SetInterface], CAFile: s[SetCAFile],
		VolumeEndpoint: s[SetVolumeEndpoint], Project: s[SetProject], Host: s[SetHost],
		appCredSecret: secrets[SecretAppCred], password: secrets[SecretPassword],
	}
	switch v := s[SetNoAuth]; v {
	case "", "false":
	case "true":
		c.NoAuth = true
	default:
		return Config{}, fmt.Errorf("openstack source: noauth is %q, want true or false: %w", v, plugins.ErrInvalid)
	}
	bad := func(format string, a ...any) (Config, error) {
		return Config{}, fmt.Errorf("openstack source: "+format+": %w", append(a, plugins.ErrInvalid)...)
	}
	switch c.Interface {
	case "", "public", "internal", "admin":
	default:
		return bad("interface %q is not public, internal or admin", c.Interface)
	}
	switch {
	case c.NoAuth:
		if c.VolumeEndpoint == "" || c.Project == "" {
			return bad("noauth needs volume-endpoint and project")
		}
		if u, err := url.Parse(c.VolumeEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("volume-endpoint %q is not an http(s) URL", c.VolumeEndpoint)
		}
		if c.Cloud != "" || c.AuthURL != "" {
			return bad("noauth excludes cloud and auth-url")
		}
	case c.Cloud != "":
		if c.AuthURL != "" {
			return bad("give either cloud or auth-url, not both")
		}
	case c.AuthURL != "":
		if u, err := url.Parse(c.AuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("auth-url %q is not an http(s) URL", c.AuthURL)
		}
		switch {
		case c.AppCredID != "" || c.AppCredName != "":
			if c.appCredSecret == "" {
				return bad("an application credential needs its secret")
			}
			if c.AppCredID == "" && c.Username == "" {
				return bad("an application credential given by name needs the username")
			}
		case c.Username != "":
			if c.password == "" {
				return bad("user %q needs a password", c.Username)
			}
		default:
			return bad("auth-url needs an application credential or a username")
		}
	default:
		return bad("give cloud, auth-url, or noauth with volume-endpoint and project")
	}
	return c, nil
}

// project names the configured project, for listings: what Cinder does not
// show a project without the tenant-attribute policy.
func (c Config) project() string {
	for _, p := range []string{c.Project, c.ProjectID, c.ProjectName} {
		if p != "" {
			return p
		}
	}
	return ""
}

// String describes the configuration without secrets.
func (c Config) String() string {
	switch {
	case c.NoAuth:
		return fmt.Sprintf("noauth %s project %s", c.VolumeEndpoint, c.Project)
	case c.Cloud != "":
		return "cloud " + c.Cloud
	}
	who := "user " + c.Username
	if c.AppCredID != "" || c.AppCredName != "" {
		who = "application credential " + c.AppCredID + c.AppCredName
	}
	return fmt.Sprintf("%s at %s", who, c.AuthURL)
}

// keystone returns the Keystone options, the endpoint options and the TLS
// configuration: from clouds.yaml for a cloud name (explicit settings
// override the file), or from the settings.
func (c Config) keystone() (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
	if c.Cloud != "" {
		opts := []clouds.ParseOption{clouds.WithCloudName(c.Cloud)}
		if c.CloudsFile != "" {
			if _, err := os.Stat(c.CloudsFile); err != nil {
				return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, fmt.Errorf("clouds file: %w", err)
			}
			opts = append(opts, clouds.WithLocations(c.CloudsFile))
		}
		for _, o := range []struct {
			v    string
			with func(string) clouds.ParseOption
		}{
			{c.Region, clouds.WithRegion}, {c.Interface, clouds.WithEndpointType}, {c.CAFile, clouds.WithCACertPath},
			{c.appCredSecret, clouds.WithApplicationCredentialSecret}, {c.password, clouds.WithPassword},
		} {
			if o.v != "" {
				opts = append(opts, o.with(o.v))
			}
		}
		ao, eo, tc, err := clouds.Parse(opts...)
		if err != nil {
			return ao, eo, nil, fmt.Errorf("cloud %q: %w", c.Cloud, err)
		}
		ao.AllowReauth = true
		return ao, eo, tc, nil
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint:            c.AuthURL,
		ApplicationCredentialID:     c.AppCredID,
		ApplicationCredentialName:   c.AppCredName,
		ApplicationCredentialSecret: c.appCredSecret,
		AllowReauth:                 true,
	}
	if c.AppCredID == "" && c.AppCredName == "" {
		ao.Password = c.password
		if c.ProjectID != "" || c.ProjectName != "" {
			ao.Scope = &gophercloud.AuthScope{ProjectID: c.ProjectID, ProjectName: c.ProjectName, DomainName: c.ProjectDomain}
		}
	}
	if c.Username != "" {
		ao.Username = c.Username
		ao.DomainName = c.UserDomain
	}
	eo := gophercloud.EndpointOpts{Region: c.Region, Availability: gophercloud.AvailabilityPublic}
	switch c.Interface {
	case "internal":
		eo.Availability = gophercloud.AvailabilityInternal
	case "admin":
		eo.Availability = gophercloud.AvailabilityAdmin
	}
	var tc *tls.Config
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return ao, eo, nil, fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ao, eo, nil, fmt.Errorf("ca-file %s holds no PEM certificate", c.CAFile)
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return ao, eo, tc, nil
}

// connect returns a Block Storage v3 client at Microversion.
func (c Config) connect(ctx context.Context) (*gophercloud.ServiceClient, error) {
	var sc *gophercloud.ServiceClient
	if c.NoAuth {
		pc, err := noauth.NewClient(gophercloud.AuthOptions{Username: "cairn", TenantName: c.Project})
		if err != nil {
			return nil, err
		}
		pc.HTTPClient = http.Client{Timeout: requestTimeout}
		// noauth appends the project to the endpoint; it wants a trailing slash.
		ep := strings.TrimSuffix(c.VolumeEndpoint, "/") + "/"
		if sc, err = noauth.NewBlockStorageNoAuthV3(pc, noauth.EndpointOpts{CinderEndpoint: ep}); err != nil {
			return nil, err
		}
	} else {
		ao, eo, tc, err := c.keystone()
		if err != nil {
			return nil, fmt.Errorf("openstack %s: %w", c, err)
		}
		hc := config.WithHTTPClient(http.Client{Timeout: requestTimeout})
		var pc *gophercloud.ProviderClient
		if tc != nil {
			pc, err = config.NewProviderClient(ctx, ao, hc, config.WithTLSConfig(tc))
		} else {
			pc, err = config.NewProviderClient(ctx, ao, hc)
		}
		if err != nil {
			return nil, fmt.Errorf("openstack %s: authenticate: %w", c, err)
		}
		if sc, err = openstack.NewBlockStorageV3(pc, eo); err != nil {
			return nil, fmt.Errorf("openstack %s: find the block-storage endpoint: %w", c, err)
		}
	}
	sc.Microversion = Microversion
	return sc, nil
}
