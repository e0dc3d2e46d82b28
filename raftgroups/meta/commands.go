package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Command is one change to State, proposed through the meta shard. Exactly
// one of its fields is set. Commands are JSON: metadata changes are rare and
// small, and a readable log helps when debugging a cluster.
type Command struct {
	CreateTopic       *CreateTopic       `json:"create_topic,omitempty"`
	DeleteTopic       *DeleteTopic       `json:"delete_topic,omitempty"`
	CreatePartitions  *CreatePartitions  `json:"create_partitions,omitempty"`
	AlterConfigs      *AlterConfigs      `json:"alter_configs,omitempty"`
	RegisterNode      *Node              `json:"register_node,omitempty"`
	InitCluster       *InitCluster       `json:"init_cluster,omitempty"`
	Reassign          *Reassign          `json:"reassign,omitempty"`
	ReplicaChange     *ReplicaChange     `json:"replica_change,omitempty"`
	BalanceLeaders    *BalanceLeaders    `json:"balance_leaders,omitempty"`
	ProducerIDs       *ProducerIDs       `json:"producer_ids,omitempty"`
	CreateGroupShards *CreateGroupShards `json:"create_group_shards,omitempty"`
	PutPlugin         *PutPlugin         `json:"put_plugin,omitempty"`
	DeletePlugin      *DeletePlugin      `json:"delete_plugin,omitempty"`
	CreateACLs        *CreateACLs        `json:"create_acls,omitempty"`
	DeleteACLs        *DeleteACLs        `json:"delete_acls,omitempty"`
	AlterCredentials  *AlterCredentials  `json:"alter_credentials,omitempty"`
}

// CreateGroupShards creates the group shards, one per entry of Replicas.
// Only the first one applied takes effect: the count is fixed for the
// cluster's life, since a group's shard is a hash of its id modulo it.
type CreateGroupShards struct {
	Replicas [][]uint64 `json:"replicas"`
}

// ProducerIDs gives Node a new block of Count producer ids, recorded in
// ProducerIDBlocks. Ids are never handed out twice.
type ProducerIDs struct {
	Node  uint64 `json:"node"`
	Count int64  `json:"count"`
}

// MaxProducerIDBlock bounds one block.
const MaxProducerIDBlock = 1 << 20

// Reassign starts moving a partition to a new replica set (Target). The
// partition's leader carries the move out step by step with Raft
// membership changes, recording each with a ReplicaChange.
type Reassign struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []uint64 `json:"replicas"`
}

// ReplicaChange records one step of a reassignment, after the matching
// Raft membership change succeeded.
type ReplicaChange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Node      uint64 `json:"node"`
	// Op is "learner" (added non-voting), "promote" (learner now voting)
	// or "remove" (replica removed).
	Op string `json:"op"`
}

// Replica change operations.
const (
	ChangeLearner = "learner"
	ChangePromote = "promote"
	ChangeRemove  = "remove"
)

// BalanceLeaders asks every partition leader to hand leadership to its
// preferred replica (the first), when that one is in sync.
type BalanceLeaders struct{}

// InitCluster names the cluster. Only the first one applied takes effect,
// so nodes racing to form the cluster agree on one id.
type InitCluster struct {
	ClusterID string `json:"cluster_id"`
}

// CreateTopic creates a topic. Replicas has one entry per partition: the
// node ids holding that partition's replicas, chosen by the proposer.
type CreateTopic struct {
	Name        string            `json:"name"`
	ID          [16]byte          `json:"id"`
	Replicas    [][]uint64        `json:"replicas"`
	Configs     map[string]string `json:"configs,omitempty"`
	CreatedAtMs int64             `json:"created_at_ms"`
}

// DeleteTopic deletes a topic and, through reconciliation, its partitions' data.
type DeleteTopic struct {
	Name string `json:"name"`
}

// CreatePartitions adds partitions to a topic; Replicas lists only the new ones.
type CreatePartitions struct {
	Topic    string     `json:"topic"`
	Replicas [][]uint64 `json:"replicas"`
}

// AlterConfigs changes a topic's config overrides. With Replace the
// overrides become exactly Set (Kafka's legacy AlterConfigs); otherwise Set
// keys are set and Delete keys revert to their defaults.
type AlterConfigs struct {
	Topic   string            `json:"topic"`
	Set     map[string]string `json:"set,omitempty"`
	Delete  []string          `json:"delete,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

// Code is the outcome of applying a command. Codes are part of the
// replicated log's meaning: never renumber them.
type Code uint64

// Outcomes of Apply.
const (
	OK                 Code = 0
	ErrTopicExists     Code = 1
	ErrUnknownTopic    Code = 2
	ErrInvalidTopic    Code = 3
	ErrInvalidReplicas Code = 4
	ErrInvalidConfigs  Code = 5
	ErrInvalidCommand  Code = 6
	ErrInvalidParts    Code = 7
	ErrUnknownPlugin   Code = 8
	ErrPluginInUse     Code = 9
	ErrInvalidACL      Code = 10
)

// Result is what Apply returns: a code, and a message for the user when the
// code is not OK.
type Result struct {
	Code    Code
	Message string
}

// Err returns nil for OK and otherwise an *ApplyError.
func (r Result) Err() error {
	if r.Code == OK {
		return nil
	}
	return &ApplyError{Code: r.Code, Message: r.Message}
}

// ApplyError is a command the meta shard refused.
type ApplyError struct {
	Code    Code
	Message string
}

func (e *ApplyError) Error() string { return "meta: " + e.Message }

// CodeOf returns the Code carried by err, or OK when err is not an ApplyError.
func CodeOf(err error) Code {
	var ae *ApplyError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return OK
}

// Encode serialises a command for proposing.
func (c Command) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("meta: encode command: %w", err)
	}
	return b, nil
}

// DecodeCommand parses a proposed command.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("meta: decode command: %w", err)
	}
	return c, nil
}

// MaxTopicNameLen is Kafka's limit on topic names.
const MaxTopicNameLen = 249

// ValidateTopicName applies Kafka's rules: 1–249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	if name == "" {
		return errors.New("topic name is empty")
	}
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("topic name is %d characters long, the limit is %d", len(name), MaxTopicNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has the character %q; use only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// MaxPartitions bounds partitions per topic so one request cannot create an
// unbounded number of Raft shards.
const MaxPartitions = 10000

// Apply applies cmd at Raft index. It validates fully before changing
// anything, so a refused command leaves s untouched. The caller owns s
// exclusively while Apply runs.
func (s *State) Apply(index uint64, cmd Command) Result {
	s.Index = index
	switch {
	case cmd.CreateTopic != nil:
		return s.createTopic(cmd.CreateTopic)
	case cmd.DeleteTopic != nil:
		return s.deleteTopic(cmd.DeleteTopic)
	case cmd.CreatePartitions != nil:
		return s.createPartitions(cmd.CreatePartitions)
	case cmd.AlterConfigs != nil:
		return s.alterConfigs(cmd.AlterConfigs)
	case cmd.RegisterNode != nil:
		return s.registerNode(cmd.RegisterNode)
	case cmd.Reassign != nil:
		return s.reassign(cmd.Reassign)
	case cmd.ReplicaChange != nil:
		return s.replicaChange(cmd.ReplicaChange)
	case cmd.PutPlugin != nil:
		return s.putPlugin(cmd.PutPlugin)
	case cmd.DeletePlugin != nil:
		return s.deletePlugin(cmd.DeletePlugin)
	case cmd.CreateACLs != nil:
		return s.createACLs(cmd.CreateACLs)
	case cmd.DeleteACLs != nil:
		return s.deleteACLs(cmd.DeleteACLs)
	case cmd.AlterCredentials != nil:
		return s.alterCredentials(cmd.AlterCredentials)
	case cmd.CreateGroupShards != nil:
		if len(s.GroupShards) > 0 {
			return Result{Code: OK}
		}
		c := cmd.CreateGroupShards
		if len(c.Replicas) == 0 || len(c.Replicas) > MaxGroupShards {
			return Result{Code: ErrInvalidParts, Message: fmt.Sprintf("group shards: want 1 to %d, got %d", MaxGroupShards, len(c.Replicas))}
		}
		if msg := s.checkReplicas(c.Replicas); msg != "" {
			return Result{Code: ErrInvalidReplicas, Message: msg}
		}
		for i, r := range c.Replicas {
			s.GroupShards = append(s.GroupShards, &Partition{Index: int32(i), ShardID: FirstGroupShardID + uint64(i),
				Replica: slices.Clone(r), Founders: slices.Clone(r)})
		}
		return Result{Code: OK}
	case cmd.ProducerIDs != nil:
		c := cmd.ProducerIDs
		if c.Count < 1 || c.Count > MaxProducerIDBlock || c.Node == 0 {
			return Result{Code: ErrInvalidCommand, Message: fmt.Sprintf("bad producer id block request: node %d, %d ids", c.Node, c.Count)}
		}
		if s.ProducerIDBlocks == nil {
			s.ProducerIDBlocks = map[uint64][2]int64{}
		}
		start := max(s.NextProducerID, 1000)
		s.ProducerIDBlocks[c.Node] = [2]int64{start, start + c.Count}
		s.NextProducerID = start + c.Count
		return Result{Code: OK}
	case cmd.BalanceLeaders != nil:
		s.LeaderBalanceSeq++
		return Result{Code: OK}
	case cmd.InitCluster != nil:
		if s.ClusterID == "" {
			s.ClusterID = cmd.InitCluster.ClusterID
		}
		return Result{Code: OK}
	}
	return Result{Code: ErrInvalidCommand, Message: "empty command"}
}

func (s *State) createTopic(c *CreateTopic) Result {
	if err := ValidateTopicName(c.Name); err != nil {
		return Result{Code: ErrInvalidTopic, Message: err.Error()}
	}
	if _, ok := s.Topics[c.Name]; ok {
		return Result{Code: ErrTopicExists, Message: fmt.Sprintf("topic %q already exists", c.Name)}
	}
	if _, ok := s.TopicByID(c.ID); ok || c.ID == [16]byte{} {
		return Result{Code: ErrInvalidCommand, Message: fmt.Sprintf("topic id for %q is zero or already used", c.Name)}
	}
	if len(c.Replicas) == 0 || len(c.Replicas) > MaxPartitions {
		return Result{Code: ErrInvalidParts, Message: fmt.Sprintf("a topic needs between 1 and %d partitions, got %d", MaxPartitions, len(c.Replicas))}
	}
	if msg := s.checkReplicas(c.Replicas); msg != "" {
		return Result{Code: ErrInvalidReplicas, Message: msg}
	}
	if err := ValidateConfigs(c.Configs); err != nil {
		return Result{Code: ErrInvalidConfigs, Message: err.Error()}
	}
	if msg := s.checkPluginRefs(c.Configs); msg != "" {
		return Result{Code: ErrInvalidConfigs, Message: msg}
	}
	t := &Topic{Name: c.Name, ID: c.ID, CreatedAtMs: c.CreatedAtMs}
	if len(c.Configs) > 0 {
		t.Configs = make(map[string]string, len(c.Configs))
		for k, v := range c.Configs {
			t.Configs[k] = v
		}
	}
	s.addPartitions(t, c.Replicas)
	s.Topics[c.Name] = t
	return Result{Code: OK}
}

func (s *State) deleteTopic(c *DeleteTopic) Result {
	if _, ok := s.Topics[c.Name]; !ok {
		return Result{Code: ErrUnknownTopic, Message: fmt.Sprintf("topic %q does not exist", c.Name)}
	}
	delete(s.Topics, c.Name)
	return Result{Code: OK}
}

func (s *State) createPartitions(c *CreatePartitions) Result {
	t, ok := s.Topics[c.Topic]
	if !ok {
		return Result{Code: ErrUnknownTopic, Message: fmt.Sprintf("topic %q does not exist", c.Topic)}
	}
	if len(c.Replicas) == 0 {
		return Result{Code: ErrInvalidParts, Message: "no partitions to add; the count must be larger than the current one"}
	}
	if len(t.Partitions)+len(c.Replicas) > MaxPartitions {
		return Result{Code: ErrInvalidParts, Message: fmt.Sprintf("a topic may have at most %d partitions", MaxPartitions)}
	}
	if msg := s.checkReplicas(c.Replicas); msg != "" {
		return Result{Code: ErrInvalidReplicas, Message: msg}
	}
	s.addPartitions(t, c.Replicas)
	return Result{Code: OK}
}

func (s *State) addPartitions(t *Topic, replicas [][]uint64) {
	for _, r := range replicas {
		t.Partitions = append(t.Partitions, &Partition{
			Index:    int32(len(t.Partitions)),
			ShardID:  s.NextShardID,
			Replica:  slices.Clone(r),
			Founders: slices.Clone(r),
		})
		s.NextShardID++
	}
}

// checkReplicas returns a message when a placement is unusable: empty,
// a node listed twice, or a node that is not registered.
func (s *State) checkReplicas(replicas [][]uint64) string {
	for i, r := range replicas {
		if len(r) == 0 {
			return fmt.Sprintf("partition %d has no replicas", i)
		}
		seen := map[uint64]bool{}
		for _, id := range r {
			if seen[id] {
				return fmt.Sprintf("partition %d lists node %d twice", i, id)
			}
			seen[id] = true
			if _, ok := s.Nodes[id]; !ok {
				return fmt.Sprintf("partition %d is placed on node %d, which is not registered", i, id)
			}
		}
	}
	return ""
}

func (s *State) alterConfigs(c *AlterConfigs) Result {
	t, ok := s.Topics[c.Topic]
	if !ok {
		return Result{Code: ErrUnknownTopic, Message: fmt.Sprintf("topic %q does not exist", c.Topic)}
	}
	if err := ValidateConfigs(c.Set); err != nil {
		return Result{Code: ErrInvalidConfigs, Message: err.Error()}
	}
	for _, k := range c.Delete {
		if _, ok := ConfigDefs[k]; !ok && !IsPluginConfigKey(k) {
			return Result{Code: ErrInvalidConfigs, Message: fmt.Sprintf("unknown config %q (supported: %v)", k, ConfigNames())}
		}
	}
	next := map[string]string{}
	if !c.Replace {
		for k, v := range t.Configs {
			next[k] = v
		}
	}
	for k, v := range c.Set {
		next[k] = v
	}
	for _, k := range c.Delete {
		delete(next, k)
	}
	if msg := s.checkPluginRefs(next); msg != "" {
		return Result{Code: ErrInvalidConfigs, Message: msg}
	}
	if len(next) == 0 {
		next = nil
	}
	t.Configs = next
	return Result{Code: OK}
}

func (s *State) registerNode(n *Node) Result {
	if n.ID == 0 {
		return Result{Code: ErrInvalidCommand, Message: "node id 0 is not allowed"}
	}
	nn := *n
	s.Nodes[n.ID] = &nn
	return Result{Code: OK}
}

func (s *State) partition(topic string, index int32) (*Partition, Result) {
	t, ok := s.Topics[topic]
	if !ok {
		return nil, Result{Code: ErrUnknownTopic, Message: fmt.Sprintf("topic %q does not exist", topic)}
	}
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, Result{Code: ErrUnknownTopic, Message: fmt.Sprintf("topic %q has no partition %d", topic, index)}
	}
	return t.Partitions[index], Result{Code: OK}
}

func (s *State) reassign(c *Reassign) Result {
	p, res := s.partition(c.Topic, c.Partition)
	if p == nil {
		return res
	}
	if msg := s.checkReplicas([][]uint64{c.Replicas}); msg != "" {
		return Result{Code: ErrInvalidReplicas, Message: msg}
	}
	if sameSet(c.Replicas, p.Replica) && len(p.Learners) == 0 {
		// Only the order (the preferred leader) changes: no move needed.
		p.Replica = slices.Clone(c.Replicas)
		p.Target = nil
		return Result{Code: OK}
	}
	p.Target = slices.Clone(c.Replicas)
	return Result{Code: OK}
}

func (s *State) replicaChange(c *ReplicaChange) Result {
	p, res := s.partition(c.Topic, c.Partition)
	if p == nil {
		return res
	}
	switch c.Op {
	case ChangeLearner:
		if !p.Hosts(c.Node) {
			p.Learners = append(p.Learners, c.Node)
		}
	case ChangePromote:
		p.Learners = slices.DeleteFunc(p.Learners, func(id uint64) bool { return id == c.Node })
		if !slices.Contains(p.Replica, c.Node) {
			p.Replica = append(p.Replica, c.Node)
		}
	case ChangeRemove:
		if len(p.Replica) == 1 && p.Replica[0] == c.Node {
			return Result{Code: ErrInvalidReplicas, Message: "cannot remove a partition's last replica"}
		}
		p.Replica = slices.DeleteFunc(p.Replica, func(id uint64) bool { return id == c.Node })
		p.Learners = slices.DeleteFunc(p.Learners, func(id uint64) bool { return id == c.Node })
		if slices.Contains(p.Founders, c.Node) && !slices.Contains(p.Departed, c.Node) {
			p.Departed = append(p.Departed, c.Node)
		}
	default:
		return Result{Code: ErrInvalidCommand, Message: fmt.Sprintf("unknown replica change %q", c.Op)}
	}
	if p.Target != nil && sameSet(p.Target, p.Replica) && len(p.Learners) == 0 {
		// Done: adopt the target's order, so its first node is preferred.
		p.Replica, p.Target = p.Target, nil
	}
	return Result{Code: OK}
}

func sameSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
