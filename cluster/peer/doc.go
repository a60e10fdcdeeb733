// Package peer moves sealed chunks between the nodes of a cluster: a Server
// serves a node's store.Store to its peers, and a Client is a peer's store
// as seen from another node.
//
// # Why HTTP/2
//
// The protocol is HTTP/2 over the cluster's mutual TLS (node.ServerTLS and
// node.ClientTLS: TLS 1.3 preferred, 1.2 minimum, certificates of the
// cluster CA only), with binary bodies. HTTP/2 gives, from the standard
// library alone, what a framed protocol would have to build and then be
// fuzzed and debugged for: many concurrent requests on one connection per
// peer, per-stream flow control so a large Put cannot starve a small Has,
// cancellation of one request without tearing down the connection (a
// context cancel becomes RST_STREAM), pings that detect a dead peer, and
// status codes for errors. The binary bodies keep the cost per chunk at 36
// bytes of framing; the only decoders of wire data are the few in wire.go,
// each with a fuzz target.
//
// # The contract
//
//   - A Client is a store.Store and passes storetest against a Server on
//     loopback. Has, Delete and PutBatch move many chunks per request;
//     GetBatch and Walk stream. Put acknowledges only after the remote
//     store's Put returned nil for every chunk of the request: the chunks
//     are durable there.
//   - The Server accepts only connections whose client certificate comes
//     from the cluster CA and names a node of the cluster (the TLS
//     configuration enforces it, and the handler checks the verified peer
//     again). A Client talks only to the node it was made for: a server
//     presenting another node's certificate is refused.
//   - The Server validates what it receives before it changes anything: a
//     Put whose framing is malformed, whose chunk fails chunk.Check (a
//     damaged outer CRC, a bad header), or whose ID is the zero ID is
//     refused whole, and nothing of it is stored. It bounds the bytes and
//     IDs per request and the requests it serves at once (more wait, with
//     their bodies read, since HTTP/2 returns a connection's flow-control
//     window only as bodies are read). It bounds the bytes of puts it holds
//     at once too; a put past that is refused as busy (429), and the client
//     retries it.
//   - The Client checks every chunk it receives with chunk.Check and
//     returns chunk.ErrCorrupt for a damaged one, so a reader can fail over
//     to another replica. Nobody on this path holds keys: the caller
//     authenticates chunks when it unseals them.
//   - Errors name the peer (node ID and address) and wrap store.ErrNotFound,
//     chunk.ErrCorrupt, store.ErrClosed (this Client closed) or one of this
//     package's sentinels: ErrUnavailable (the peer could not be reached or
//     is overloaded or shutting down; retry elsewhere), ErrRefused (the
//     peer refused the request as malformed or too large: a bug or a version
//     mismatch, not worth retrying).
//
// # Wire format (version 1, under /cairn/v1/)
//
// All integers are big-endian. An ID list is n×32 bytes. A bitmap answers
// an ID list: ceil(n/8) bytes, bit i%8 of byte i/8 for ID i, spare bits
// zero.
//
//	POST has     body: ID list            reply: bitmap, set = present
//	POST put     body: n × (ID, u32 len, sealed bytes)
//	                                      reply: bitmap, set = newly stored
//	POST delete  body: ID list            reply: empty
//	GET  chunk/HEX                        reply: sealed bytes
//	GET  stat/HEX                         reply: info
//	POST get     body: ID list            reply: record stream
//	GET  walk                             reply: record stream, IDs ascending
//
// An info is the sealed size (u64) and the last-reference time in Unix
// nanoseconds (i64; math.MinInt64 for none). A record is (u8 kind, ID, u32
// len, payload): kind 1 a chunk (payload: sealed bytes for get, an info
// for walk), 2 not found, 3 corrupt and 4 failed (payload: a message), and
// a stream ends with kind 0 (zero ID, empty payload), so a cut connection is
// never mistaken for the end. Errors outside a stream are HTTP statuses
// with a text body: 400 malformed, 404 not found, 413 too large, 422
// corrupt, 429 busy (retry), 503 unavailable.
package peer
