package meta

import (
	"hash/fnv"
	"maps"
	"slices"
	"sort"
)

// FirstPartitionShardID is the first shard id handed to a partition. Ids
// below it are reserved: 1 is the meta shard, 2..1023 are group shards.
const FirstPartitionShardID uint64 = 1024

// MetaShardID is the Raft shard that holds this State.
const MetaShardID uint64 = 1

// State is the whole metadata. A State obtained from a Store is shared and
// must be treated as read-only; Apply works on a clone.
type State struct {
	// Index is the Raft log index of the last applied command.
	Index uint64 `json:"index"`
	// ClusterID is the Kafka cluster id, set once when the cluster forms.
	ClusterID string `json:"cluster_id"`
	// LeaderBalanceSeq counts BalanceLeaders requests; leaders act when it
	// changes.
	LeaderBalanceSeq uint64 `json:"leader_balance_seq"`
	// NextProducerID is the first producer id not yet handed to a node.
	NextProducerID int64 `json:"next_producer_id"`
	// ProducerIDBlocks is the block of producer ids each node hands out
	// (InitProducerId), as [start, end).
	ProducerIDBlocks map[uint64][2]int64 `json:"producer_id_blocks,omitempty"`
	// NextShardID is the next shard id to hand to a new partition.
	NextShardID uint64            `json:"next_shard_id"`
	Topics      map[string]*Topic `json:"topics"`
	Nodes       map[uint64]*Node  `json:"nodes"`
	// GroupShards hold consumer groups and their committed offsets; a
	// group lives on GroupShards[GroupShardIndex(group, len)]. Created once
	// when the cluster forms, never resized.
	GroupShards []*Partition `json:"group_shards,omitempty"`
	// Plugins are the uploaded Wasm plugins by name; Modules holds their
	// modules by sha256 (hex). Module bytes are never modified in place,
	// so clones share them.
	Plugins map[string]*Plugin `json:"plugins,omitempty"`
	Modules map[string][]byte  `json:"modules,omitempty"`
	// ACLs are the access control bindings (see acls.go). Copy-on-write:
	// clones share the slice and commands replace it, never modify it.
	ACLs []ACL `json:"acls,omitempty"`
	// Users are the SASL users and their SCRAM credentials, by name (see
	// credentials.go). Commands replace a *User, never modify it, so clones
	// share them.
	Users map[string]*User `json:"users,omitempty"`
}

// FirstGroupShardID is the shard id of the first group shard.
const FirstGroupShardID uint64 = 2

// MaxGroupShards bounds the group shard count (ids stay below partitions').
const MaxGroupShards = 256

// GroupShardFor returns the group shard that holds group, or nil before
// the group shards exist.
func (s *State) GroupShardFor(group string) *Partition {
	if len(s.GroupShards) == 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(group))
	return s.GroupShards[h.Sum32()%uint32(len(s.GroupShards))]
}

// Topic is a named, partitioned log.
type Topic struct {
	Name string `json:"name"`
	// ID is the topic's Kafka UUID (Metadata v10+, Fetch v13+).
	ID         [16]byte     `json:"id"`
	Partitions []*Partition `json:"partitions"`
	// Configs holds only the overrides set on this topic; unset keys take
	// the broker default. See ConfigDefs.
	Configs map[string]string `json:"configs,omitempty"`
	// CreatedAtMs is the proposer's wall clock at creation, informational.
	CreatedAtMs int64 `json:"created_at_ms"`
}

// Partition is one partition of a topic and the Raft shard behind it.
type Partition struct {
	Index   int32  `json:"index"`
	ShardID uint64 `json:"shard_id"`
	// Replica lists the nodes holding voting replicas, the first being the
	// preferred leader.
	Replica []uint64 `json:"replicas"`
	// Founders are the replicas the shard was created with; they bootstrap
	// it together. Any other node joins the running shard. Never changes.
	Founders []uint64 `json:"founders"`
	// Departed are founders removed at some point: if one comes back, it
	// joins like any new replica.
	Departed []uint64 `json:"departed,omitempty"`
	// Target is the replica set a reassignment is moving to, nil when none
	// is in progress. Its first node is the preferred leader.
	Target []uint64 `json:"target,omitempty"`
	// Learners are nodes added to the shard as non-voting replicas that
	// are catching up, on their way into Replica.
	Learners []uint64 `json:"learners,omitempty"`
}

// Bootstraps reports whether node starts this partition's shard as a
// founder (with the founding members) rather than joining it.
func (p *Partition) Bootstraps(node uint64) bool {
	return slices.Contains(p.Founders, node) && !slices.Contains(p.Departed, node)
}

// Hosts reports whether node holds a replica (voting or learning).
func (p *Partition) Hosts(node uint64) bool {
	return slices.Contains(p.Replica, node) || slices.Contains(p.Learners, node)
}

// Node is a broker in the node registry.
type Node struct {
	ID        uint64 `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	QUICAddr  string `json:"quic_addr"`
	KafkaAddr string `json:"kafka_addr"`
	AdminAddr string `json:"admin_addr"`
	Rack      string `json:"rack,omitempty"`
	// CACert is the PEM certificate of the CA that signed the node's TLS
	// certificate. Only public material: every node publishes the bundle
	// of all of them for clients.
	CACert string `json:"ca_cert,omitempty"`
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		NextShardID: FirstPartitionShardID,
		Topics:      map[string]*Topic{},
		Nodes:       map[uint64]*Node{},
	}
}

// Clone returns a deep copy, so a published State is never mutated.
func (s *State) Clone() *State {
	c := &State{
		Index:            s.Index,
		ClusterID:        s.ClusterID,
		LeaderBalanceSeq: s.LeaderBalanceSeq,
		NextProducerID:   s.NextProducerID,
		ProducerIDBlocks: maps.Clone(s.ProducerIDBlocks),
		GroupShards:      clonePartitions(s.GroupShards),
		NextShardID:      s.NextShardID,
		Topics:           make(map[string]*Topic, len(s.Topics)),
		Nodes:            make(map[uint64]*Node, len(s.Nodes)),
		Modules:          maps.Clone(s.Modules),
		ACLs:             s.ACLs,
		Users:            maps.Clone(s.Users),
	}
	if s.Plugins != nil {
		c.Plugins = make(map[string]*Plugin, len(s.Plugins))
		for name, p := range s.Plugins {
			c.Plugins[name] = p.clone()
		}
	}
	for name, t := range s.Topics {
		c.Topics[name] = t.clone()
	}
	for id, n := range s.Nodes {
		nn := *n
		c.Nodes[id] = &nn
	}
	return c
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Configs = maps.Clone(t.Configs)
	c.Partitions = clonePartitions(t.Partitions)
	return &c
}

func clonePartitions(ps []*Partition) []*Partition {
	if ps == nil {
		return nil
	}
	out := make([]*Partition, len(ps))
	for i, p := range ps {
		pp := *p
		pp.Replica = slices.Clone(p.Replica)
		pp.Founders = slices.Clone(p.Founders)
		pp.Departed = slices.Clone(p.Departed)
		pp.Target = slices.Clone(p.Target)
		pp.Learners = slices.Clone(p.Learners)
		out[i] = &pp
	}
	return out
}

// TopicNames returns the topic names in sorted order.
func (s *State) TopicNames() []string {
	names := make([]string, 0, len(s.Topics))
	for name := range s.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TopicByID finds a topic by its UUID.
func (s *State) TopicByID(id [16]byte) (*Topic, bool) {
	for _, t := range s.Topics {
		if t.ID == id {
			return t, true
		}
	}
	return nil, false
}

// NodeIDs returns the registered node ids in ascending order.
func (s *State) NodeIDs() []uint64 {
	ids := make([]uint64, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Config returns the effective value of a topic config: the override when
// set, else the default from defaults, else the built-in default.
func (t *Topic) Config(key string, defaults map[string]string) string {
	if v, ok := t.Configs[key]; ok {
		return v
	}
	if v, ok := defaults[key]; ok {
		return v
	}
	if d, ok := ConfigDefs[key]; ok {
		return d.Default
	}
	return ""
}
