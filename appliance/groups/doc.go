// Package groups is the coordinator of Kafka's classic consumer-group
// protocol for the groups of one group shard: JoinGroup, SyncGroup,
// Heartbeat and LeaveGroup with their rebalance barriers and session
// timers, static membership (KIP-345), and the group's committed offsets
// (OffsetCommit, OffsetFetch, OffsetDelete), plus DescribeGroups,
// ListGroups and DeleteGroups. One file per Kafka API, named by its key;
// each says which versions it serves.
//
// A Coordinator lives on the node that leads its shard. It keeps the
// volatile protocol state in memory (members, timers, requests parked at a
// barrier) and writes through a Store only what must survive a failover:
// each group's completed generation (members, protocol metadata,
// assignments) and its committed offsets. A Coordinator built on the next
// leader from that persisted Snapshot lets members carry on heartbeating
// with their member ids and generation, so a failover costs no rebalance;
// only a rebalance that was in flight is lost, and its members rejoin.
//
// What it does not own: Raft and the encoding of what it persists (the
// Store's implementation), which node coordinates which group (the broker
// hashes group ids to shards and answers NOT_COORDINATOR for groups whose
// shard it does not lead), request framing, ACLs, and the next-generation
// consumer protocol (KIP-848).
package groups
