package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// A group shard holds what consumer groups must not lose when their
// coordinator moves: each group's persisted metadata (its last completed
// generation, opaque to this package: the coordinator owns its format)
// and the committed offsets. It lives in memory; its snapshot is the
// whole state. Only the coordinator on the shard's leader writes; every
// replica applies.

// CommittedOffset is one committed offset of a group.
type CommittedOffset struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	Offset       int64   `json:"offset"`
	LeaderEpoch  int32   `json:"leader_epoch"`
	Metadata     *string `json:"metadata,omitempty"`
	CommitTimeMs int64   `json:"commit_time_ms"`
}

// GroupCommand is one change to a group shard; exactly one field is set.
type GroupCommand struct {
	SaveGroup     *SavedGroup   `json:"save_group,omitempty"`
	DeleteGroup   string        `json:"delete_group,omitempty"`
	Commit        *GroupOffsets `json:"commit,omitempty"`
	DeleteOffsets *GroupOffsets `json:"delete_offsets,omitempty"`
}

// SavedGroup is a group's persisted metadata.
type SavedGroup struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// GroupOffsets are offsets of one group to commit or delete (for a delete,
// only topic and partition matter).
type GroupOffsets struct {
	Group   string            `json:"group"`
	Offsets []CommittedOffset `json:"offsets"`
}

// GroupState is a group shard's state.
type GroupState struct {
	Groups map[string][]byte `json:"groups"`
	// Offsets by group, topic and partition.
	Offsets map[string]map[string]map[int32]CommittedOffset `json:"offsets"`
}

func newGroupState() *GroupState {
	return &GroupState{Groups: map[string][]byte{}, Offsets: map[string]map[string]map[int32]CommittedOffset{}}
}

func (st *GroupState) apply(c GroupCommand) error {
	switch {
	case c.SaveGroup != nil:
		st.Groups[c.SaveGroup.Name] = c.SaveGroup.Data
	case c.DeleteGroup != "":
		delete(st.Groups, c.DeleteGroup)
		delete(st.Offsets, c.DeleteGroup)
	case c.Commit != nil:
		g := st.Offsets[c.Commit.Group]
		if g == nil {
			g = map[string]map[int32]CommittedOffset{}
			st.Offsets[c.Commit.Group] = g
		}
		for _, o := range c.Commit.Offsets {
			if g[o.Topic] == nil {
				g[o.Topic] = map[int32]CommittedOffset{}
			}
			g[o.Topic][o.Partition] = o
		}
	case c.DeleteOffsets != nil:
		g := st.Offsets[c.DeleteOffsets.Group]
		for _, o := range c.DeleteOffsets.Offsets {
			delete(g[o.Topic], o.Partition)
			if len(g[o.Topic]) == 0 {
				delete(g, o.Topic)
			}
		}
		if len(g) == 0 {
			delete(st.Offsets, c.DeleteOffsets.Group)
		}
	default:
		return fmt.Errorf("empty group command")
	}
	return nil
}

// GroupStore is a group shard replica's state, readable while the shard
// applies changes. Its methods are safe for concurrent use.
type GroupStore struct {
	mu sync.RWMutex
	st *GroupState
}

// NewGroupStore returns an empty store.
func NewGroupStore() *GroupStore { return &GroupStore{st: newGroupState()} }

// Snapshot returns a deep copy of the state.
func (s *GroupStore) Snapshot() *GroupState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := &GroupState{Groups: maps.Clone(s.st.Groups), Offsets: make(map[string]map[string]map[int32]CommittedOffset, len(s.st.Offsets))}
	for g, topics := range s.st.Offsets {
		ct := make(map[string]map[int32]CommittedOffset, len(topics))
		for t, parts := range topics {
			ct[t] = maps.Clone(parts)
		}
		c.Offsets[g] = ct
	}
	return c
}

// Offsets returns a copy of group's committed offsets, by topic and
// partition.
func (s *GroupStore) Offsets(group string) map[string]map[int32]CommittedOffset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]map[int32]CommittedOffset{}
	for t, parts := range s.st.Offsets[group] {
		out[t] = maps.Clone(parts)
	}
	return out
}

// Groups is a group shard's state machine.
type Groups struct {
	store *GroupStore
}

var _ sm.IStateMachine = (*Groups)(nil)

// NewGroups returns the state machine of a group shard over store.
func NewGroups(store *GroupStore) *Groups { return &Groups{store: store} }

// Update applies one command. A command this version cannot parse is
// refused, not fatal.
func (g *Groups) Update(e sm.Entry) (sm.Result, error) {
	var c GroupCommand
	if err := json.Unmarshal(e.Cmd, &c); err != nil {
		return refused(CodeMalformed, err.Error()), nil
	}
	g.store.mu.Lock()
	err := g.store.st.apply(c)
	g.store.mu.Unlock()
	if err != nil {
		return refused(CodeMalformed, err.Error()), nil
	}
	return sm.Result{}, nil
}

// Lookup returns the store; the query is ignored.
func (g *Groups) Lookup(any) (any, error) { return g.store, nil }

// SaveSnapshot writes the whole state as JSON.
func (g *Groups) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	g.store.mu.RLock()
	defer g.store.mu.RUnlock()
	if err := json.NewEncoder(w).Encode(g.store.st); err != nil {
		return fmt.Errorf("group shard snapshot: %w", err)
	}
	return nil
}

// RecoverFromSnapshot replaces the state with the snapshot's.
func (g *Groups) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	st := newGroupState()
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("group shard snapshot recover: %w", err)
	}
	if st.Groups == nil {
		st.Groups = map[string][]byte{}
	}
	if st.Offsets == nil {
		st.Offsets = map[string]map[string]map[int32]CommittedOffset{}
	}
	g.store.mu.Lock()
	g.store.st = st
	g.store.mu.Unlock()
	return nil
}

// Close does nothing: the state is rebuilt from snapshot and log.
func (g *Groups) Close() error { return nil }
