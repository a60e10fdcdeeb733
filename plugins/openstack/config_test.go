package openstack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cairnhq/cairn/plugins"
)

const secret = "s3cr3t-never-shown"

func TestParseConfigRejects(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]string
		secrets  map[string]string
	}{
		{"nothing", map[string]string{}, nil},
		{"unknown setting", map[string]string{SetCloud: "c", "colour": "red"}, nil},
		{"unknown secret", map[string]string{SetCloud: "c"}, map[string]string{"token": secret}},
		{"noauth without endpoint", map[string]string{SetNoAuth: "true", SetProject: "p"}, nil},
		{"noauth without project", map[string]string{SetNoAuth: "true", SetVolumeEndpoint: "http://h:8776/v3"}, nil},
		{"noauth bad endpoint", map[string]string{SetNoAuth: "true", SetVolumeEndpoint: "h:8776", SetProject: "p"}, nil},
		{"noauth with cloud", map[string]string{SetNoAuth: "true", SetVolumeEndpoint: "http://h/v3", SetProject: "p", SetCloud: "c"}, nil},
		{"noauth not boolean", map[string]string{SetNoAuth: "yes"}, nil},
		{"cloud and auth-url", map[string]string{SetCloud: "c", SetAuthURL: "https://k/v3"}, nil},
		{"auth-url alone", map[string]string{SetAuthURL: "https://k/v3"}, nil},
		{"auth-url not a URL", map[string]string{SetAuthURL: "k:5000", SetUsername: "u"}, map[string]string{SecretPassword: secret}},
		{"app cred without secret", map[string]string{SetAuthURL: "https://k/v3", SetAppCredID: "id"}, nil},
		{"app cred name without user", map[string]string{SetAuthURL: "https://k/v3", SetAppCredName: "n"}, map[string]string{SecretAppCred: secret}},
		{"user without password", map[string]string{SetAuthURL: "https://k/v3", SetUsername: "u"}, nil},
		{"bad interface", map[string]string{SetCloud: "c", SetInterface: "private"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(tt.settings, tt.secrets)
			if !errors.Is(err, plugins.ErrInvalid) {
				t.Fatalf("ParseConfig = %v, %v; want plugins.ErrInvalid", c, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestKeystoneOptions(t *testing.T) {
	t.Run("application credential", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{
			SetAuthURL: "https://keystone.example:5000/v3", SetAppCredID: "ac-1", SetRegion: "RegionTwo", SetInterface: "internal",
		}, map[string]string{SecretAppCred: secret})
		if err != nil {
			t.Fatal(err)
		}
		ao, eo, tc, err := c.keystone()
		if err != nil {
			t.Fatal(err)
		}
		if ao.IdentityEndpoint != "https://keystone.example:5000/v3" || ao.ApplicationCredentialID != "ac-1" ||
			ao.ApplicationCredentialSecret != secret || ao.Password != "" || ao.Scope != nil || !ao.AllowReauth {
			t.Errorf("auth options %+v", ao)
		}
		if eo.Region != "RegionTwo" || eo.Availability != gophercloud.AvailabilityInternal {
			t.Errorf("endpoint options %+v", eo)
		}
		if tc != nil {
			t.Errorf("TLS config without a CA file: %+v", tc)
		}
		if s := c.String(); strings.Contains(s, secret) || !strings.Contains(s, "ac-1") {
			t.Errorf("String() = %q", s)
		}
	})
	t.Run("password with project scope and CA", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, testCA(t), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(map[string]string{
			SetAuthURL: "https://k/v3", SetUsername: "backup", SetUserDomain: "Default",
			SetProjectName: "tenant-a", SetProjectDomain: "Default", SetCAFile: ca, SetInterface: "admin",
		}, map[string]string{SecretPassword: secret})
		if err != nil {
			t.Fatal(err)
		}
		ao, eo, tc, err := c.keystone()
		if err != nil {
			t.Fatal(err)
		}
		if ao.Username != "backup" || ao.DomainName != "Default" || ao.Password != secret ||
			ao.Scope == nil || ao.Scope.ProjectName != "tenant-a" || ao.Scope.DomainName != "Default" {
			t.Errorf("auth options %+v scope %+v", ao, ao.Scope)
		}
		if eo.Availability != gophercloud.AvailabilityAdmin {
			t.Errorf("endpoint options %+v", eo)
		}
		if tc == nil || tc.RootCAs == nil {
			t.Errorf("no CA pool from %s", ca)
		}
	})
	t.Run("CA file that is not PEM", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(map[string]string{SetAuthURL: "https://k/v3", SetUsername: "u", SetCAFile: ca},
			map[string]string{SecretPassword: secret})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.keystone(); err == nil {
			t.Error("keystone() accepted a CA file without a certificate")
		}
	})
}

func TestCloudsYAML(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "clouds.yaml")
	yaml := `clouds:
  prod:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.prod:5000/v3
      application_credential_id: ac-prod
    region_name: RegionOne
    interface: internal
  lab:
    auth:
      auth_url: https://keystone.lab:5000/v3
      username: backup
      password: from-the-file
      project_name: lab
      user_domain_name: Default
      project_domain_name: Default
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("application credential, secret from the source", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{SetCloud: "prod", SetCloudsFile: file}, map[string]string{SecretAppCred: secret})
		if err != nil {
			t.Fatal(err)
		}
		ao, eo, _, err := c.keystone()
		if err != nil {
			t.Fatal(err)
		}
		if ao.IdentityEndpoint != "https://keystone.prod:5000/v3" || ao.ApplicationCredentialID != "ac-prod" || ao.ApplicationCredentialSecret != secret {
			t.Errorf("auth options %+v", ao)
		}
		if eo.Region != "RegionOne" || eo.Availability != gophercloud.AvailabilityInternal {
			t.Errorf("endpoint options %+v", eo)
		}
	})
	t.Run("password from the file, region overridden", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{SetCloud: "lab", SetCloudsFile: file, SetRegion: "RegionLab"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ao, eo, _, err := c.keystone()
		if err != nil {
			t.Fatal(err)
		}
		if ao.Username != "backup" || ao.Password != "from-the-file" || ao.Scope == nil || ao.Scope.ProjectName != "lab" {
			t.Errorf("auth options %+v scope %+v", ao, ao.Scope)
		}
		if eo.Region != "RegionLab" {
			t.Errorf("region %q, want the setting's RegionLab", eo.Region)
		}
	})
	t.Run("unknown cloud", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{SetCloud: "nope", SetCloudsFile: file}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.keystone(); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("keystone() = %v, want an error naming the cloud", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		c, err := ParseConfig(map[string]string{SetCloud: "prod", SetCloudsFile: filepath.Join(dir, "none.yaml")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.keystone(); err == nil {
			t.Error("keystone() read a missing clouds file")
		}
	})
}

func TestTargetOptions(t *testing.T) {
	o, err := ParseTargetOptions(map[string]string{OptVolumeName: "n", OptVolumeType: "ssd", OptAvailabilityZone: "az1"}, false)
	if err != nil || o.Name != "n" || o.Type != "ssd" || o.Zone != "az1" || o.Volume != "" {
		t.Errorf("ParseTargetOptions = %+v, %v", o, err)
	}
	for _, bad := range []map[string]string{
		{"size": "10"},
		{OptVolume: "id", OptVolumeName: "n"},
	} {
		if _, err := ParseTargetOptions(bad, true); !errors.Is(err, plugins.ErrInvalid) {
			t.Errorf("ParseTargetOptions(%v) = %v, want plugins.ErrInvalid", bad, err)
		}
	}
}

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
