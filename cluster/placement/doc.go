// Package placement computes which nodes own a chunk. Placement is a pure
// function of a chunk ID and the membership Map; nothing is looked up and
// nothing is stored per chunk.
//
// The contract:
//
//   - Owners is deterministic: the same Map and ID give the same ordered
//     owners in every process, on every platform and in every Go release,
//     whatever the order of Map.Nodes. Changing the function moves data, so
//     the golden test pins it.
//   - Only Healthy nodes own chunks. A Draining node keeps what it holds
//     readable (it stays in Candidates) but receives no new replicas; a Dead
//     node appears nowhere.
//   - Each chunk gets min(Replicas, healthy nodes) distinct owners, chosen by
//     weighted rendezvous hashing: every node scores -weight/ln(u), with u a
//     hash of node ID and chunk ID in (0, 1), and the highest scores win, so a
//     node's expected share of first owners is its share of the total weight.
//   - Owners spread over failure domains (the node label named by
//     Map.Domain) first: a domain gets its k-th replica of a chunk only when
//     every domain with a healthy node left has k-1.
//   - Movement is minimal: adding a node moves only the replicas it takes
//     over, removing one moves only its own, and reweighting one moves only
//     replicas to or from that node. (With failure domains this holds when
//     the domains can each take an equal share; uneven domains can shift a
//     few more.)
//
// The first owner is the chunk's primary. Readers walk Candidates: the
// owners first, then every other node that may still hold the chunk (during
// rebalancing, or when draining) in falling score order, so the nodes that
// owned the chunk under a previous map come early.
//
// Owners does not validate its Map; validate once when a Map is accepted
// (the metadata log does) with Map.Validate.
package placement
