// Package replica keeps each chunk on the nodes that own it. A Store
// places chunks by computation (placement.Map.Owners of the chunk ID under
// the current map) and reaches each node's store through a Nodes function:
// the local node's own store directly, the others through peer clients.
//
// The contract (the store.Store contract, plus):
//
//   - Put sends a chunk to all of its owners at once and returns nil only
//     when at least MinAcks of them acknowledged it, so it is durable on
//     that many nodes. MinAcks defaults to every owner (min(Replicas,
//     healthy nodes)). An owner that fails is named in the error, which
//     wraps ErrShort. With MinAcks below the owner count, Put succeeds while
//     an owner is down and the chunk stays under-replicated until Repair
//     copies it; that is the price of writing through a failure, and Scan
//     counts the deficit. Put waits for every owner's answer, even past
//     MinAcks, so nothing outlives the call; a hung owner delays it up to
//     its client's timeout. Put's stored result is the first acknowledging
//     owner's (the primary's when it is up), so concurrent Puts of one
//     chunk report storing it once.
//   - Has counts a chunk present only when at least MinAcks of its owners
//     hold it (by default: all of them). A writer that skips uploading what
//     Has reports present therefore never commits a restore point on fewer
//     replicas than Put would have demanded, and a chunk short of a replica
//     is simply uploaded again, which heals it. An owner that cannot answer
//     counts as not holding; if too few owners answer, Has fails with
//     ErrShort naming them.
//   - Get tries the nodes that may hold the chunk in placement order (the
//     owners, then the other readable nodes, see placement.Candidates),
//     failing over on an error, a missing chunk or a corrupt copy. Every
//     copy is checked with chunk.Check (and GetVerified's verify) before it
//     is returned; each corrupt copy found is reported to Options.Corrupt,
//     so the caller can quarantine it (delete it on that node) and Repair
//     puts a good copy back. Get returns store.ErrNotFound only when every
//     node answered that it does not hold the chunk.
//   - Delete removes chunks from every readable node (owners or not) and
//     fails naming the nodes it could not reach; copies on those stay.
//   - Walk merges the nodes' walks: each chunk once, in ID order.
//   - SetMap replaces the map; an older epoch is refused. Calls in flight
//     keep the map they started with.
//   - Close only stops this Store; the node stores belong to the caller.
//
// The healing functions (Scan, Repair, Rebalance, Drain) merge the ID
// walks of every readable node, so they hold one chunk's worth of state at
// a time, compute each chunk's owners under the current map, and count
// their work in a Progress that a background loop can read while they run.
// Rebalance and Drain delete a copy from a node that no longer owns it only
// after every owner has confirmed holding the chunk, and stop if the map's
// epoch changes under them.
package replica
