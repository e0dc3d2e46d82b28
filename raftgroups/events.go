package raftgroups

import "github.com/lni/dragonboat/v4/raftio"

// systemEvents passes the Dragonboat events eddy uses to the host's
// callbacks. They run on Dragonboat goroutines: callbacks must not block.
type systemEvents struct{ h *Host }

var _ raftio.ISystemEventListener = systemEvents{}

// ConnectionFailed: Raft could not reach a peer at addr, which usually
// means the peer's process is gone (connection refused) seconds before
// any timeout would say so.
func (e systemEvents) ConnectionFailed(info raftio.ConnectionInfo) {
	if f := e.h.cfg.OnPeerUnreachable; f != nil && !info.SnapshotConnection {
		f(info.Address)
	}
}

// SnapshotReceived counts snapshots streamed to this node's replicas
// (a replica that fell behind a compacted log catches up this way).
func (e systemEvents) SnapshotReceived(raftio.SnapshotInfo) { e.h.snapshotsReceived.Add(1) }

func (systemEvents) NodeHostShuttingDown()                       {}
func (systemEvents) NodeUnloaded(raftio.NodeInfo)                {}
func (systemEvents) NodeDeleted(raftio.NodeInfo)                 {}
func (systemEvents) NodeReady(raftio.NodeInfo)                   {}
func (systemEvents) MembershipChanged(raftio.NodeInfo)           {}
func (systemEvents) ConnectionEstablished(raftio.ConnectionInfo) {}
func (systemEvents) SendSnapshotStarted(raftio.SnapshotInfo)     {}
func (systemEvents) SendSnapshotCompleted(raftio.SnapshotInfo)   {}
func (systemEvents) SendSnapshotAborted(raftio.SnapshotInfo)     {}
func (systemEvents) SnapshotRecovered(raftio.SnapshotInfo)       {}
func (systemEvents) SnapshotCreated(raftio.SnapshotInfo)         {}
func (systemEvents) SnapshotCompacted(raftio.SnapshotInfo)       {}
func (systemEvents) LogCompacted(raftio.EntryInfo)               {}
func (systemEvents) LogDBCompacted(raftio.EntryInfo)             {}
