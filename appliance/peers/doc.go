// Package peers keeps this node's view of the other nodes: which are
// alive, and where each partition replica's log ends. Every node serves
// its replicas' state on the admin API (GET /v1/internal/replicas) and
// polls every other node's, about once a second.
//
// From that view come what Raft alone does not expose: the brokers listed
// in Metadata (live ones only), each partition's in-sync replicas (Kafka's
// rule: a follower is in sync if it caught up with the leader's log end
// within the lag time), and followers fit to serve reads (KIP-392).
package peers
