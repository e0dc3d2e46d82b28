// Package broker serves the Kafka protocol: it decodes request frames
// handed over by package transport, runs each API against the node's Raft
// groups, and encodes the responses. One file per Kafka API key, named by
// its key; each says which versions it serves.
//
// Ordering: requests of one connection are answered in order. Work whose
// order matters (proposing a produce) happens in ServeFrame, as the frame
// arrives; everything else, including waiting for commits and fetch
// long-polls, runs in the returned Responder.
package broker
