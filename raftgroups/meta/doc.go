// Package meta is eddy's cluster metadata model: topics and their configs,
// partition → Raft shard and replica placement, and the node registry.
//
// It is pure: State.Apply takes a Command and returns a Result without
// reading the clock, randomness, files or the network, so every replica of
// the meta shard reaches the same State from the same commands. Anything
// that is not deterministic (a topic id, placement across live nodes) is
// decided by the proposer and carried inside the command. The Raft wiring
// lives in package raftgroups; this package never imports it.
package meta
