package member

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/cluster/node"
)

// identity is what makes this process a member: its ID, its cluster's CA
// and its own certificate. It lives in the member's directory; the key
// files have mode 0600.
type identity struct {
	NodeID   string
	CACert   []byte
	CAKey    []byte // every member holds it, so any leader can admit a node
	NodeCert []byte
	NodeKey  []byte
}

var identityFiles = []struct {
	name   string
	field  func(*identity) *[]byte
	secret bool
}{
	{"ca.pem", func(id *identity) *[]byte { return &id.CACert }, false},
	{"ca.key", func(id *identity) *[]byte { return &id.CAKey }, true},
	{"node.pem", func(id *identity) *[]byte { return &id.NodeCert }, false},
	{"node.key", func(id *identity) *[]byte { return &id.NodeKey }, true},
}

// loadIdentity reads the identity in dir; fs.ErrNotExist if there is none
// (a node that has never bootstrapped or joined).
func loadIdentity(dir string) (*identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, "node.id"))
	if err != nil {
		return nil, err
	}
	id := &identity{NodeID: strings.TrimSpace(string(b))}
	for _, f := range identityFiles {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("member identity is incomplete: %w", err)
		}
		*f.field(id) = b
	}
	return id, nil
}

// save writes the identity, node.id last: a crash part-way leaves no
// node.id, and the next start begins again.
func (id *identity) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range identityFiles {
		if err := writeFile(filepath.Join(dir, f.name), *f.field(id), f.secret); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, "node.id"), []byte(id.NodeID+"\n"), false)
}

func writeFile(path string, b []byte, secret bool) error {
	mode := fs.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// bootstrapIdentity makes a new cluster: a cluster ID, its CA and this
// node's certificate for hosts.
func bootstrapIdentity(nodeID string, hosts []string, now time.Time) (*identity, error) {
	clusterID := meta.NewID("cl", now, rand.Reader)
	ca, err := node.NewCA(clusterID, now, rand.Reader)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.Issue(nodeID, hosts, now)
	if err != nil {
		return nil, err
	}
	return &identity{NodeID: nodeID, CACert: ca.CertPEM(), CAKey: caKey, NodeCert: cert, NodeKey: key}, nil
}

// newNodeID names a node that has none yet.
func newNodeID(now time.Time) string {
	return meta.NewID("node", now, rand.Reader)
}

// caFingerprint is the SHA-256 of the CA certificate (DER), in hex: what a
// join token carries so the joining node can tell the real cluster from an
// impostor before it sends the token.
func caFingerprint(caDER []byte) string {
	sum := sha256.Sum256(caDER)
	return hex.EncodeToString(sum[:])
}

// isNotExist reports whether err says a node has no identity yet.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// clusterOf returns the cluster ID a CA certificate's URI names.
func clusterOf(uris []*url.URL) string {
	for _, u := range uris {
		if u.Scheme == "cairn-cluster" || u.Scheme == "cairn-node" {
			return u.Host
		}
	}
	return ""
}
