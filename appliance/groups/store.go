package groups

import (
	"context"
	"errors"
)

// Store persists what a coordinator failover must not lose. Every method
// returns once the change is durable and visible to a Snapshot read on any
// replica of the shard; ctx bounds the wait. An error means the change was
// not persisted (the shard's leadership moved, the wait timed out): the
// coordinator answers the client with a retriable code and does not apply
// the change in memory.
//
// The coordinator serialises calls per group, so writes for one group reach
// the Store in the order their effects become visible in memory. Calls for
// different groups may run concurrently.
type Store interface {
	// SaveGroup upserts the persisted form of a group: after each completed
	// rebalance, when a static member takes over an instance id, and when
	// the group becomes Empty. Its byte slices are shared with the
	// coordinator and must not be modified.
	SaveGroup(ctx context.Context, g Group) error
	// DeleteGroup removes a group's metadata and all its offsets.
	DeleteGroup(ctx context.Context, group string) error
	// CommitOffsets upserts offsets of one group.
	CommitOffsets(ctx context.Context, group string, offsets []Offset) error
	// DeleteOffsets removes offsets of one group; absent ones are ignored.
	DeleteOffsets(ctx context.Context, group string, parts []TopicPartition) error
}

// ErrLoading may be wrapped by a Store error to say the shard's state is
// still being replayed on this node; offset requests then get the
// retriable COORDINATOR_LOAD_IN_PROGRESS instead of NOT_COORDINATOR.
var ErrLoading = errors.New("groups: group state is still loading")

// Snapshot is the persisted state a Coordinator starts from, read from the
// group shard by the node that just became its leader. The coordinator
// takes ownership of it.
type Snapshot struct {
	Groups  map[string]Group    `json:"groups,omitempty"`
	Offsets map[string][]Offset `json:"offsets,omitempty"` // by group
}

// Group states as Kafka names them (DescribeGroups, ListGroups). Only
// Empty and Stable are ever persisted; the others exist during a
// rebalance or a deletion.
const (
	StateEmpty               = "Empty"
	StatePreparingRebalance  = "PreparingRebalance"
	StateCompletingRebalance = "CompletingRebalance"
	StateStable              = "Stable"
	StateDead                = "Dead"
)

// Group is the persisted form of a group: its last completed generation.
type Group struct {
	Name         string   `json:"name"`
	ProtocolType string   `json:"protocol_type"`
	Protocol     string   `json:"protocol"`
	Generation   int32    `json:"generation"`
	Leader       string   `json:"leader"`
	State        string   `json:"state"`
	Members      []Member `json:"members,omitempty"`
	UpdatedAtMs  int64    `json:"updated_at_ms"`
}

// Member is one member of a persisted generation.
type Member struct {
	ID                 string     `json:"id"`
	InstanceID         *string    `json:"instance_id,omitempty"`
	ClientID           string     `json:"client_id"`
	ClientHost         string     `json:"client_host"`
	SessionTimeoutMs   int32      `json:"session_timeout_ms"`
	RebalanceTimeoutMs int32      `json:"rebalance_timeout_ms"`
	Protocols          []Protocol `json:"protocols"`
	Assignment         []byte     `json:"assignment"`
}

// Protocol is one protocol a member supports, with its opaque metadata (for
// consumers, a serialized kmsg.ConsumerMemberMetadata).
type Protocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

// Offset is one committed offset.
type Offset struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	Offset       int64   `json:"offset"`
	LeaderEpoch  int32   `json:"leader_epoch"`
	Metadata     *string `json:"metadata,omitempty"`
	CommitTimeMs int64   `json:"commit_time_ms"`
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}
