// Package node is the trust layer between the nodes of a Cairn cluster.
//
// The contract:
//
//   - A cluster has one CA (ECDSA P-256, ten years), created at bootstrap
//     and named by the cluster ID. Every node holds a certificate from it
//     (one year) valid for both server and client authentication, whose
//     identity is the URI SAN cairn-node://CLUSTER/NODE.
//   - Node-to-node connections are mutual TLS (1.3 preferred, 1.2 minimum)
//     that trust the cluster CA and nothing else: no system roots, no
//     certificate without the cluster's URI SAN. PeerID names the node at
//     the other end of a verified connection.
//   - Joining takes a join token: random, short-lived (15 minutes unless
//     told otherwise) and redeemable once. Tokens are kept only as SHA-256
//     hashes, so a snapshot of the table (for Raft) never holds one in
//     clear.
//
// Time and randomness are injected so that expiry is exact in tests. The
// package knows nothing of the appliance; the appliance wires it in.
package node
