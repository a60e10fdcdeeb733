package node

import (
	"fmt"
	"net/url"
	"strings"
)

// uriScheme names node identities in certificates: cairn-node://CLUSTER/NODE
// for a node, cairn-node://CLUSTER for the cluster CA.
const uriScheme = "cairn-node"

// checkID refuses IDs that would not survive a round trip through a URI
// host or path segment.
func checkID(kind, id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%s id %q: want 1 to 64 characters", kind, id)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		default:
			return fmt.Errorf("%s id %q: want lower-case letters, digits and '-'", kind, id)
		}
	}
	return nil
}

func nodeURI(clusterID, nodeID string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: clusterID, Path: "/" + nodeID}
}

func clusterURI(clusterID string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: clusterID}
}

// parseIdentity reads cluster and node IDs from the cairn-node URIs among
// uris. The node ID is empty for a CA. More than one such URI is refused:
// a certificate names exactly one identity.
func parseIdentity(uris []*url.URL) (clusterID, nodeID string, err error) {
	var found *url.URL
	for _, u := range uris {
		if u.Scheme != uriScheme {
			continue
		}
		if found != nil {
			return "", "", fmt.Errorf("certificate names more than one %s identity", uriScheme)
		}
		found = u
	}
	if found == nil {
		return "", "", fmt.Errorf("certificate names no %s identity", uriScheme)
	}
	clusterID = found.Host
	if err := checkID("cluster", clusterID); err != nil {
		return "", "", err
	}
	nodeID = strings.TrimPrefix(found.Path, "/")
	if nodeID != "" {
		if err := checkID("node", nodeID); err != nil {
			return "", "", err
		}
	}
	return clusterID, nodeID, nil
}
