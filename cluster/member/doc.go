// Package member makes a process one member of a Cairn cluster: Raft for
// the replicated catalog, the cluster CA and this node's certificate, and
// one mutual-TLS listener that carries Raft, forwarded writes, health
// probes, joins and (through Handle) the chunk protocol.
//
// The contract:
//
//   - The first start without --join bootstraps a one-member cluster: a
//     cluster ID, its CA and this node's certificate, kept in the member's
//     directory (keys 0600). A single node is a one-member cluster on the
//     same code path as a large one.
//   - The listener splits connections by ALPN: "cairn-raft/1" streams go to
//     Raft and need a verified member certificate; everything else is HTTP
//     (HTTP/2 between members), where every route but join refuses callers
//     without one.
//   - A join token is node.TokenPrefix, a 32-byte secret and, after a dot,
//     the SHA-256 of the cluster CA certificate. The joining node checks the
//     CA the member presents against it before sending the token, so a
//     token cannot be phished by an impostor. Tokens are kept hashed in the
//     replicated state and redeem once, on any member, within 15 minutes.
//   - The leader admits a node: it redeems the token through Raft, issues
//     the node's certificate, records the node and adds it to Raft as a
//     non-voter, and promotes it to voter once it answers probes, so a node
//     that never starts cannot cost the cluster its quorum. The reply also
//     carries the CA key (any future leader must be able to admit nodes) and
//     the appliance's shared secret (the master key) — only over TLS to a
//     holder of a valid token.
//   - Followers forward writes to the leader (meta.Forwarder); a write
//     returns once applied on the member that took it.
//   - Every member probes the others each Probe. The leader declares a
//     member down after DeadAfter without an answer, and active again when
//     it answers; after each check it runs the appliance's Healer, and
//     removes draining members the Healer reports drained.
package member
