// Package raftgroups owns this node's Raft side: one Dragonboat NodeHost,
// the meta shard, one shard per partition replica, and the reconciler that
// starts and stops partition replicas to match the metadata.
//
// Callers propose through Host and read partition data through the local
// replica's fsm.Partition. Placement decisions and state machines are
// deterministic; the clock enters only through commands built here on the
// proposing side. raftgroups never imports plugins or appliance.
package raftgroups
