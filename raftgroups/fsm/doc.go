// Package fsm holds eddy's Raft state machines: the meta shard's machine
// over package meta, and the partition machine over package partlog.
//
// Every Update here is deterministic: it reads only the committed entries
// it is given (a command carries the leader's clock and epoch when it needs
// them), never the clock, randomness or plugins, so all replicas of a shard
// hold the same data. Dragonboat drives these types; package raftgroups
// creates and starts them.
package fsm
