package raftgroups

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// Errors a caller maps to client-visible codes.
var (
	// ErrNotLeader: this node does not lead the shard; the client should
	// refresh metadata and go to the leader.
	ErrNotLeader = errors.New("raftgroups: not the leader")
	// ErrUnavailable: the shard cannot take the request now (no leader yet,
	// queue full, shard starting or stopping); retrying later may succeed.
	ErrUnavailable = errors.New("raftgroups: shard unavailable")
	// ErrTimeout: the request was not committed in time. It may still be
	// applied later.
	ErrTimeout = errors.New("raftgroups: timed out")
	// ErrUnknownShard: no local replica of the shard is running.
	ErrUnknownShard = errors.New("raftgroups: no local replica of the shard")
)

// MutualTLS names the PEM files of the Raft transport's mutual TLS: the
// CA every node's certificate is signed by, and this node's certificate
// (valid for its Raft address, for server and client use) and key.
type MutualTLS struct{ CAFile, CertFile, KeyFile string }

// Config configures a Host.
type Config struct {
	// NodeID is this node's id; it is also its replica id in every shard.
	NodeID uint64
	// DataDir holds raft/ (Dragonboat's log and metadata) and
	// partitions/<shard id>/ (the partition replicas).
	DataDir string
	// RaftAddr is the address peers reach this node's Raft at.
	RaftAddr string
	// RaftListenAddr is the address Raft binds; empty means RaftAddr.
	RaftListenAddr string
	// MutualTLS, when set, makes nodes authenticate each other on the Raft
	// transport: every connection both ways presents a certificate signed
	// by CAFile, and a peer without one is refused. Nil is plaintext.
	MutualTLS *MutualTLS
	// InitialMembers are the meta shard's founding members (node id → raft
	// address). Empty means a single-node cluster of this node.
	InitialMembers map[uint64]string
	// Join starts this node's meta replica as a joiner: a running member
	// must already have added it (AddNode). Ignored once the node has Raft
	// state.
	Join bool
	// DeploymentID keeps clusters that share a network apart. 0 → 1.
	DeploymentID uint64
	// RTTMillisecond is the Raft tick. 0 → 100 ms. Every shard replica
	// ticks, so the tick sets the idle CPU cost of many partitions: with
	// 300 replicas per node, 13.5% of a core at 50 ms, 8.8% at 100 ms
	// (docs/decisions.md).
	RTTMillisecond uint64
	// HeartbeatTicks and ElectionTicks are the leader's heartbeat interval
	// and followers' election timeout, in ticks. 0 → 2 and 10: heartbeats
	// every 200 ms, elections after 1 s without a leader.
	HeartbeatTicks, ElectionTicks uint64
	// Self is this node's registry entry, registered at start.
	Self meta.Node
	// TopicDefaults are broker-wide topic config defaults (Kafka names).
	TopicDefaults map[string]string
	// PartitionSnapshotEntries is how many applied entries pass between
	// partition snapshots. Each one syncs the segments, writes a checkpoint
	// and lets Dragonboat compact its log, so it bounds both the replay
	// after a crash and the Raft log's size. 0 → 1000 (about 16 MiB of Raft
	// log at 16 KiB produce batches).
	PartitionSnapshotEntries uint64
	// GroupShards is how many group shards hold consumer groups, fixed
	// when the cluster forms. 0 → 4.
	GroupShards int
	// RetentionCheckInterval is how often led partitions are checked for
	// segments past retention. 0 → 30 s.
	RetentionCheckInterval time.Duration
	// OnLeaderUpdated, when set, is told of every leader change seen by
	// this node. It runs on a Dragonboat goroutine: it must not block.
	OnLeaderUpdated func(shardID, leaderID, term uint64)
	// OnPeerUnreachable, when set, is told the Raft address of a peer Raft
	// failed to connect to. It must not block.
	OnPeerUnreachable func(raftAddr string)
	Logger            zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.DeploymentID == 0 {
		c.DeploymentID = 1
	}
	if c.RTTMillisecond == 0 {
		c.RTTMillisecond = 100
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 2
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 5 * c.HeartbeatTicks
	}
	if c.GroupShards == 0 {
		c.GroupShards = 4
	}
	if c.PartitionSnapshotEntries == 0 {
		c.PartitionSnapshotEntries = 1000
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = 30 * time.Second
	}
	if len(c.InitialMembers) == 0 {
		c.InitialMembers = map[uint64]string{c.NodeID: c.RaftAddr}
	}
	if c.Self.ID == 0 {
		c.Self.ID = c.NodeID
	}
	if c.Self.RaftAddr == "" {
		c.Self.RaftAddr = c.RaftAddr
	}
}

// Host is this node's Raft side. Its methods are safe for concurrent use.
type Host struct {
	cfg   Config
	log   zerolog.Logger
	nh    *dragonboat.NodeHost
	metas *fsm.MetaStore

	mu       sync.RWMutex
	replicas map[uint64]*replica // running partition replicas by shard id

	catchUp         atomic.Pointer[CatchUpFunc]
	retentionPolicy atomic.Pointer[RetentionPolicy]

	// metaSessions holds the client sessions ProposeMeta retries under, so
	// a command retried after its leader died is applied once. A nil
	// entry is a free slot; the channel's capacity bounds concurrency.
	metaSessions chan *client.Session

	pidMu             sync.Mutex // guards pidNext, pidEnd
	pidNext, pidEnd   int64
	snapshotsReceived atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// replica is a running shard replica on this node: a partition's or,
// with groups set, a group shard's.
type replica struct {
	shardID uint64
	topic   string
	index   int32
	session *client.Session
	part    atomic.Pointer[fsm.Partition] // set by the state machine factory
	logCfg  fsmLogConfig
	groups  *fsm.GroupStore
}

type fsmLogConfig struct{ segmentBytes, segmentMs int64 }

// Start opens the NodeHost, starts (or restarts) the meta shard, waits
// until its state is current, registers this node and starts the
// reconciler and retention loops. ctx bounds the wait for the meta shard.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	cfg.setDefaults()
	if cfg.NodeID == 0 {
		return nil, errors.New("raftgroups: node id must be at least 1")
	}
	routeDragonboatLogs(cfg.Logger)
	h := &Host{
		cfg:      cfg,
		log:      cfg.Logger,
		metas:    fsm.NewMetaStore(),
		replicas: map[uint64]*replica{},
		stop:     make(chan struct{}),

		metaSessions: make(chan *client.Session, metaProposers),
	}
	for range metaProposers {
		h.metaSessions <- nil
	}
	if err := os.MkdirAll(h.partitionsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("raftgroups: %w", err)
	}
	expert := config.GetDefaultExpertConfig()
	// These are stored in the data dir and fixed for its life. The defaults
	// size LogDB for 8 GB of memtables and 16 workers; on two cores 4 shards
	// measured 2.7× faster with many active partitions (measurements.md).
	expert.LogDB = config.GetTinyMemLogDBConfig()
	expert.LogDB.Shards = 4
	expert.Engine.ExecShards = 4
	expert.Engine.CommitShards = 4
	expert.Engine.ApplyShards = 4
	nhc := config.NodeHostConfig{
		DeploymentID:        cfg.DeploymentID,
		NodeHostDir:         filepath.Join(cfg.DataDir, "raft"),
		WALDir:              filepath.Join(cfg.DataDir, "raft"),
		RTTMillisecond:      cfg.RTTMillisecond,
		RaftAddress:         cfg.RaftAddr,
		ListenAddress:       cfg.RaftListenAddr,
		RaftEventListener:   leaderListener{h},
		SystemEventListener: systemEvents{h},
		Expert:              expert,
	}
	if t := cfg.MutualTLS; t != nil {
		nhc.MutualTLS, nhc.CAFile, nhc.CertFile, nhc.KeyFile = true, t.CAFile, t.CertFile, t.KeyFile
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		return nil, fmt.Errorf("raftgroups: start raft on %s (data %s): %w", cfg.RaftAddr, nhc.NodeHostDir, err)
	}
	h.nh = nh
	if err := h.startMeta(); err != nil {
		nh.Close()
		return nil, err
	}
	if err := h.waitMetaCurrent(ctx); err != nil {
		nh.Close()
		return nil, err
	}
	if err := h.registerSelf(ctx); err != nil {
		nh.Close()
		return nil, err
	}
	h.reconcile(ctx)
	h.wg.Add(3)
	go h.reconcileLoop()
	go h.retentionLoop()
	go h.moveLoop()
	return h, nil
}

type leaderListener struct{ h *Host }

func (l leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	if f := l.h.cfg.OnLeaderUpdated; f != nil {
		f(info.ShardID, info.LeaderID, info.Term)
	}
}

func (h *Host) partitionsDir() string { return filepath.Join(h.cfg.DataDir, "partitions") }

func (h *Host) partitionDir(shardID uint64) string {
	return filepath.Join(h.partitionsDir(), fmt.Sprint(shardID))
}

// shardConfig is the Raft config of one shard replica. A replica that
// joined a running shard starts non-voting: Dragonboat requires it, and
// replaying its promotion (or a snapshot listing it as voting) makes it a
// follower again after a restart.
func (h *Host) shardConfig(shardID uint64, snapshotEntries uint64, joined bool) config.Config {
	return config.Config{
		IsNonVoting:        joined,
		ReplicaID:          h.cfg.NodeID,
		ShardID:            shardID,
		ElectionRTT:        h.cfg.ElectionTicks,
		HeartbeatRTT:       h.cfg.HeartbeatTicks,
		CheckQuorum:        true,
		PreVote:            true,
		SnapshotEntries:    snapshotEntries,
		CompactionOverhead: snapshotEntries / 2,
		WaitReady:          false,
	}
}

func (h *Host) startMeta() error {
	members := map[uint64]dragonboat.Target{}
	join := false
	// The marker outlives the --join flag: a node that joined keeps
	// starting its meta replica as one that joined.
	marker := filepath.Join(h.cfg.DataDir, "raft", "JOINED")
	_, err := os.Stat(marker)
	joined := err == nil
	switch {
	case h.nh.HasNodeInfo(meta.MetaShardID, h.cfg.NodeID):
		// A restart: Dragonboat has the membership.
	case h.cfg.Join:
		join, joined = true, true
		if err := os.WriteFile(marker, []byte("this node joined a running cluster\n"), 0o644); err != nil {
			return fmt.Errorf("raftgroups: %w", err)
		}
	default:
		for id, addr := range h.cfg.InitialMembers {
			members[id] = addr
		}
	}
	create := func(uint64, uint64) sm.IStateMachine { return fsm.NewMeta(h.metas) }
	if err := h.nh.StartReplica(members, join, create, h.shardConfig(meta.MetaShardID, 200, joined)); err != nil {
		return fmt.Errorf("raftgroups: start meta shard: %w", err)
	}
	return nil
}

// waitMetaCurrent blocks until the local meta state includes every command
// committed before the call, so the reconciler never acts on a stale view
// (for example deleting a partition whose topic is merely not replayed yet).
func (h *Host) waitMetaCurrent(ctx context.Context) error {
	start := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := h.readIndex(wctx, meta.MetaShardID)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("raftgroups: meta shard not ready: %w (last error: %v)", ctx.Err(), err)
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrUnavailable) {
			return err
		}
		h.log.Warn().Dur("waited", time.Since(start).Round(time.Second)).Interface("initial_cluster", h.cfg.InitialMembers).
			Msg("waiting for a quorum of the meta shard; are the other controllers running and reachable on their raft addresses?")
	}
}

// attemptTimeout bounds one Raft read or proposal attempt. A request
// forwarded to a leader that dies is dropped without an answer; Dragonboat
// would wait for the caller's whole deadline, so each attempt is short
// and the loops retry until ctx ends.
const attemptTimeout = 2 * time.Second

// readIndex waits until the local replica of shardID has applied
// everything committed before the call (a Raft ReadIndex), retrying
// attempts that were dropped or refused while a leader is elected.
func (h *Host) readIndex(ctx context.Context, shardID uint64) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := h.nh.SyncRead(actx, shardID, nil)
		cancel()
		if err == nil {
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("raftgroups: read shard %d: %w", shardID, mapErr(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftgroups: read shard %d: %w", shardID, mapErr(ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *Host) registerSelf(ctx context.Context) error {
	if h.Meta().ClusterID == "" {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return fmt.Errorf("raftgroups: cluster id: %w", err)
		}
		cmd := meta.Command{InitCluster: &meta.InitCluster{ClusterID: base64.RawURLEncoding.EncodeToString(id[:])}}
		if err := h.ProposeMeta(ctx, cmd); err != nil {
			return fmt.Errorf("raftgroups: name the cluster: %w", err)
		}
	}
	if cur, ok := h.Meta().Nodes[h.cfg.NodeID]; ok && *cur == h.cfg.Self {
		return nil
	}
	self := h.cfg.Self
	if err := h.ProposeMeta(ctx, meta.Command{RegisterNode: &self}); err != nil {
		return fmt.Errorf("raftgroups: register node %d: %w", self.ID, err)
	}
	return nil
}

// stopContext is a context that ends when the host closes; loops use it
// for the Raft calls they make.
func (h *Host) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Close stops the loops and the NodeHost (every shard replica on it).
func (h *Host) Close() {
	close(h.stop)
	h.wg.Wait()
	h.nh.Close()
	h.mu.Lock()
	h.replicas = map[uint64]*replica{}
	h.mu.Unlock()
}

// SnapshotsReceived counts partition and meta snapshots this node's
// replicas received from leaders since it started.
func (h *Host) SnapshotsReceived() int64 { return h.snapshotsReceived.Load() }

// NodeID returns this node's id.
func (h *Host) NodeID() uint64 { return h.cfg.NodeID }

// Meta returns the current metadata. It is shared: do not modify it.
func (h *Host) Meta() *meta.State { return h.metas.State() }

// SyncMeta waits until the local metadata includes every change committed
// before the call (a Raft ReadIndex), and returns it. Decisions that must
// not act on a stale view, such as placing replicas, start here.
func (h *Host) SyncMeta(ctx context.Context) (*meta.State, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.readIndex(rctx, meta.MetaShardID); err != nil {
		return nil, err
	}
	return h.Meta(), nil
}

// MetaChanged returns a channel closed at the next metadata change.
func (h *Host) MetaChanged() <-chan struct{} { return h.metas.Changed() }

// TopicDefaults returns the broker-wide topic config defaults.
func (h *Host) TopicDefaults() map[string]string { return h.cfg.TopicDefaults }

// ProposeMeta proposes a metadata change and waits until it is applied. It
// retries while the meta shard is temporarily unavailable, until ctx ends.
// A refused command returns a *meta.ApplyError.
func (h *Host) ProposeMeta(ctx context.Context, cmd meta.Command) error {
	b, err := cmd.Encode()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var session *client.Session
	select {
	case session = <-h.metaSessions:
	case <-ctx.Done():
		return fmt.Errorf("raftgroups: propose to meta shard: %w", mapErr(ctx.Err()))
	}
	done := false
	defer func() {
		if !done {
			// The last attempt's outcome is unknown; its series may still
			// be applied, so the session is not reused.
			session = nil
		}
		h.metaSessions <- session
	}()
	for {
		var err error
		if session == nil {
			session, err = h.metaSession(ctx)
			if err != nil {
				return fmt.Errorf("raftgroups: propose to meta shard: %w", err)
			}
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		res, err := h.nh.SyncPropose(actx, session, b)
		cancel()
		if err == nil {
			session.ProposalCompleted()
			done = true
			return fsm.MetaResult(res)
		}
		if errors.Is(err, dragonboat.ErrRejected) {
			// The session expired from the state machine's LRU: the
			// command was not applied; register a new session and retry.
			session = nil
		} else if !retryable(err) {
			return fmt.Errorf("raftgroups: propose to meta shard: %w", mapErr(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftgroups: propose to meta shard: %w", mapErr(err))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metaProposers is how many meta proposals a node has in flight at once,
// each under its own client session.
const metaProposers = 4

// metaSession registers a client session with the meta shard. Retried
// proposals under one session and series are applied at most once.
func (h *Host) metaSession(ctx context.Context) (*client.Session, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		s, err := h.nh.SyncGetSession(actx, meta.MetaShardID)
		cancel()
		if err == nil {
			return s, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("register a client session: %w", mapErr(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("register a client session: %w", mapErr(err))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// retryable reports whether a Raft request may succeed if made again:
// the shard was busy or leaderless, or the attempt was dropped.
func retryable(err error) bool {
	return dragonboat.IsTempError(err) || errors.Is(err, dragonboat.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, dragonboat.ErrTimeoutTooSmall)
}

// mapErr turns Dragonboat's errors into this package's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dragonboat.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, dragonboat.ErrTimeoutTooSmall):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, dragonboat.ErrShardNotFound):
		return fmt.Errorf("%w: %v", ErrUnknownShard, err)
	case dragonboat.IsTempError(err), errors.Is(err, dragonboat.ErrRejected):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// Leader returns the shard's leader as this node knows it, and the Raft
// term, which eddy uses as the Kafka leader epoch.
func (h *Host) Leader(shardID uint64) (leaderID, term uint64, ok bool) {
	id, t, valid, err := h.nh.GetLeaderID(shardID)
	if err != nil || !valid {
		return 0, 0, false
	}
	return id, t, true
}

// Partition returns the local replica of a partition shard.
func (h *Host) Partition(shardID uint64) (*fsm.Partition, error) {
	h.mu.RLock()
	r, ok := h.replicas[shardID]
	h.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownShard
	}
	if p := r.part.Load(); p != nil {
		return p, nil
	}
	return nil, ErrUnknownShard
}

// Proposal is an append submitted to a partition shard.
type Proposal struct {
	rs *dragonboat.RequestState
}

// ProposeAppend submits cmd (built with fsm.EncodeAppend) to the
// partition's shard without waiting; the caller must be the leader. Calls
// for one shard are committed in the order they are made.
func (h *Host) ProposeAppend(shardID uint64, cmd []byte, timeout time.Duration) (*Proposal, error) {
	return h.propose(shardID, cmd, timeout)
}

// ProposeAdvanceStart moves the partition's log start offset forward on
// every replica (DeleteRecords and retention).
func (h *Host) ProposeAdvanceStart(shardID uint64, offset int64, timeout time.Duration) (*Proposal, error) {
	return h.propose(shardID, fsm.EncodeAdvanceStart(offset), timeout)
}

func (h *Host) propose(shardID uint64, cmd []byte, timeout time.Duration) (*Proposal, error) {
	h.mu.RLock()
	r, ok := h.replicas[shardID]
	h.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownShard
	}
	if leader, _, ok := h.Leader(shardID); !ok {
		return nil, fmt.Errorf("%w: shard %d has no leader yet", ErrUnavailable, shardID)
	} else if leader != h.cfg.NodeID {
		return nil, ErrNotLeader
	}
	rs, err := h.nh.Propose(r.session, cmd, timeout)
	if err != nil {
		return nil, mapErr(err)
	}
	return &Proposal{rs: rs}, nil
}

// Wait blocks until the proposal is applied or ctx ends, and returns the
// command's value (base offset or new start offset).
func (p *Proposal) Wait(ctx context.Context) (int64, error) {
	select {
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case r := <-p.rs.ResultC():
		p.rs.Release()
		switch {
		case r.Completed():
			res := r.GetResult()
			return fsm.DecodeResult(res.Value, res.Data)
		case r.Timeout():
			return 0, ErrTimeout
		case r.Dropped():
			return 0, fmt.Errorf("%w: proposal dropped (leader changing)", ErrUnavailable)
		case r.Terminated():
			return 0, fmt.Errorf("%w: shard stopped", ErrUnavailable)
		default:
			return 0, fmt.Errorf("%w: proposal rejected or aborted", ErrUnavailable)
		}
	}
}

// ReplicaInfo describes a shard replica running on this node.
type ReplicaInfo struct {
	ShardID uint64 `json:"shard"`
	// Group marks a group shard's replica (Topic is empty then).
	Group     bool   `json:"group,omitempty"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Leader    bool   `json:"leader"`
	// LeaderID and Term are this node's view of the shard's leadership.
	LeaderID uint64 `json:"leader_id"`
	Term     uint64 `json:"term"`
	// StartOffset and EndOffset bound the replica's applied log; -1 when
	// the replica is not open yet.
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
}

// Replicas lists the partition replicas running on this node.
func (h *Host) Replicas() []ReplicaInfo {
	h.mu.RLock()
	out := make([]ReplicaInfo, 0, len(h.replicas))
	for _, r := range h.replicas {
		out = append(out, ReplicaInfo{ShardID: r.shardID, Topic: r.topic, Partition: r.index, Group: r.groups != nil})
	}
	h.mu.RUnlock()
	for i := range out {
		leader, term, ok := h.Leader(out[i].ShardID)
		out[i].Leader = ok && leader == h.cfg.NodeID
		out[i].LeaderID, out[i].Term = leader, term
		out[i].StartOffset, out[i].EndOffset = -1, -1
		if p, err := h.Partition(out[i].ShardID); err == nil {
			if l, err := p.Log(); err == nil {
				out[i].StartOffset, out[i].EndOffset = l.StartOffset(), l.EndOffset()
			}
		}
	}
	return out
}

// HandOffLeadership asks every shard this node leads (partitions and the
// meta shard) to transfer leadership to another voting replica, and waits
// until none is led here or ctx ends. A node about to stop calls it so
// clients move to the new leaders before the connections close, as
// Kafka's controlled shutdown does. Shards with no other replica stay.
func (h *Host) HandOffLeadership(ctx context.Context) {
	start := time.Now()
	defer func() { h.log.Info().Dur("took", time.Since(start)).Msg("handed off leadership") }()
	for {
		pending := 0
		info := h.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
		for _, si := range info.ShardInfoList {
			if !si.IsLeader {
				continue
			}
			for id := range si.Replicas {
				if id != h.cfg.NodeID {
					// A transfer can be dropped (the target lagging, a
					// proposal in the way): asking again is harmless.
					_ = h.nh.RequestLeaderTransfer(si.ShardID, id)
					pending++
					break
				}
			}
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			h.log.Warn().Int("shards", pending).Msg("stopping while still leading shards; their followers will elect a leader")
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// MetaMembers lists the meta shard's voting members (the controllers) and
// non-voting ones, by node id, from a linearizable read.
func (h *Host) MetaMembers(ctx context.Context) (voting, nonVoting map[uint64]string, err error) {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := h.nh.SyncGetShardMembership(mctx, meta.MetaShardID)
	if err != nil {
		return nil, nil, fmt.Errorf("raftgroups: meta membership: %w", mapErr(err))
	}
	return m.Nodes, m.NonVotings, nil
}

// AddNode makes node id (reachable for Raft at raftAddr) a non-voting
// member of the meta shard, so it can start with Join and receive the
// metadata. Adding a node that is already a member is not an error.
func (h *Host) AddNode(ctx context.Context, id uint64, raftAddr string) error {
	voting, nonVoting, err := h.MetaMembers(ctx)
	if err != nil {
		return err
	}
	if addr, ok := voting[id]; ok {
		return sameAddr(id, addr, raftAddr)
	}
	if addr, ok := nonVoting[id]; ok {
		return sameAddr(id, addr, raftAddr)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.nh.SyncRequestAddNonVoting(cctx, meta.MetaShardID, id, raftAddr, 0); err != nil {
		return fmt.Errorf("raftgroups: add node %d at %s: %w", id, raftAddr, mapErr(err))
	}
	h.log.Info().Uint64("node", id).Str("raft", raftAddr).Msg("added node to the cluster")
	return nil
}

func sameAddr(id uint64, have, want string) error {
	if have != want {
		return fmt.Errorf("raftgroups: node %d is already a member at %s, not %s", id, have, want)
	}
	return nil
}

// PromoteController turns a non-voting meta member into a voting one.
func (h *Host) PromoteController(ctx context.Context, id uint64, raftAddr string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.nh.SyncRequestAddReplica(cctx, meta.MetaShardID, id, raftAddr, 0); err != nil {
		return fmt.Errorf("raftgroups: promote node %d: %w", id, mapErr(err))
	}
	h.log.Info().Uint64("node", id).Msg("node became a controller (voting member of the meta shard)")
	return nil
}

// producerIDBlockSize is how many producer ids a node takes from the meta
// shard at a time.
const producerIDBlockSize = 1000

// NewProducerID hands out a producer id never given out before anywhere in
// the cluster, from this node's block, taking a new block from the meta
// shard when it runs out.
func (h *Host) NewProducerID(ctx context.Context) (int64, error) {
	h.pidMu.Lock()
	defer h.pidMu.Unlock()
	if h.pidNext == 0 || h.pidNext >= h.pidEnd {
		cmd := meta.Command{ProducerIDs: &meta.ProducerIDs{Node: h.cfg.NodeID, Count: producerIDBlockSize}}
		if err := h.ProposeMeta(ctx, cmd); err != nil {
			return 0, fmt.Errorf("raftgroups: allocate producer ids: %w", err)
		}
		block := h.Meta().ProducerIDBlocks[h.cfg.NodeID]
		h.pidNext, h.pidEnd = block[0], block[1]
	}
	id := h.pidNext
	h.pidNext++
	return id, nil
}

// DuplicateBatches sums, over this node's partition replicas, the batches
// recognised as resends from idempotent producers.
func (h *Host) DuplicateBatches() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var n int64
	for _, r := range h.replicas {
		if p := r.part.Load(); p != nil {
			n += p.Duplicates()
		}
	}
	return n
}

// GroupShardOf returns the group shard holding group, or nil before the
// group shards exist.
func (h *Host) GroupShardOf(group string) *meta.Partition { return h.Meta().GroupShardFor(group) }

// GroupStore returns the state of the local replica of a group shard.
func (h *Host) GroupStore(shardID uint64) (*fsm.GroupStore, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, ok := h.replicas[shardID]
	if !ok || r.groups == nil {
		return nil, ErrUnknownShard
	}
	return r.groups, nil
}

// ProposeGroup commits a change to a group shard and waits until it is
// applied here. Only the shard's leader (the coordinator) calls it.
func (h *Host) ProposeGroup(ctx context.Context, shardID uint64, cmd fsm.GroupCommand) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("raftgroups: encode group command: %w", err)
	}
	if leader, _, ok := h.Leader(shardID); !ok || leader != h.cfg.NodeID {
		return ErrNotLeader
	}
	h.mu.RLock()
	r, ok := h.replicas[shardID]
	h.mu.RUnlock()
	if !ok {
		return ErrUnknownShard
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	res, err := h.nh.SyncPropose(ctx, r.session, b)
	if err != nil {
		return fmt.Errorf("raftgroups: group shard %d: %w", shardID, mapErr(err))
	}
	_, err = fsm.DecodeResult(res.Value, res.Data)
	return err
}

// SyncShard waits until the local replica has applied everything the
// shard committed before the call (a ReadIndex): a new leader does this
// before serving from its state.
func (h *Host) SyncShard(ctx context.Context, shardID uint64) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.readIndex(rctx, shardID)
}
