package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// MetaStore publishes the meta shard's applied State to readers on this
// node. Readers get an immutable snapshot and a channel that is closed at
// the next change, so watchers never miss an update.
type MetaStore struct {
	state   atomic.Pointer[meta.State]
	mu      sync.Mutex
	changed chan struct{}
}

// NewMetaStore returns a store holding an empty State.
func NewMetaStore() *MetaStore {
	s := &MetaStore{changed: make(chan struct{})}
	s.state.Store(meta.NewState())
	return s
}

// State returns the current State. It is shared: do not modify it.
func (s *MetaStore) State() *meta.State { return s.state.Load() }

// Changed returns a channel closed at the next published change.
func (s *MetaStore) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *MetaStore) publish(st *meta.State) {
	s.state.Store(st)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Meta is the meta shard's state machine. Metadata is small, so it lives in
// memory and its snapshot is the whole State.
type Meta struct {
	store *MetaStore
}

var _ sm.IStateMachine = (*Meta)(nil)

// NewMeta returns a meta state machine publishing into store.
func NewMeta(store *MetaStore) *Meta { return &Meta{store: store} }

// resultRefused marks an sm.Result.Value whose low bits carry a meta.Code.
const resultRefused = uint64(1) << 63

// Update applies one command. A refused command leaves State unchanged and
// returns its code and message in the result.
func (m *Meta) Update(e sm.Entry) (sm.Result, error) {
	cmd, err := meta.DecodeCommand(e.Cmd)
	if err != nil {
		// A command this version cannot parse is refused, not fatal: the
		// proposer gets the error and the log moves on.
		return sm.Result{Value: resultRefused | uint64(meta.ErrInvalidCommand), Data: []byte(err.Error())}, nil
	}
	next := m.store.State().Clone()
	res := next.Apply(e.Index, cmd)
	if res.Code != meta.OK {
		return sm.Result{Value: resultRefused | uint64(res.Code), Data: []byte(res.Message)}, nil
	}
	m.store.publish(next)
	return sm.Result{}, nil
}

// MetaResult turns the sm.Result of a meta proposal back into an error:
// nil when applied, *meta.ApplyError when refused.
func MetaResult(r sm.Result) error {
	if r.Value&resultRefused == 0 {
		return nil
	}
	return &meta.ApplyError{Code: meta.Code(r.Value &^ resultRefused), Message: string(r.Data)}
}

// Lookup returns the current *meta.State; the query is ignored.
func (m *Meta) Lookup(any) (any, error) { return m.store.State(), nil }

// SaveSnapshot writes the whole State as JSON.
func (m *Meta) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	if err := json.NewEncoder(w).Encode(m.store.State()); err != nil {
		return fmt.Errorf("meta snapshot: %w", err)
	}
	return nil
}

// RecoverFromSnapshot replaces State with the snapshot's.
func (m *Meta) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	st := meta.NewState()
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("meta snapshot recover: %w", err)
	}
	if st.Topics == nil {
		st.Topics = map[string]*meta.Topic{}
	}
	if st.Nodes == nil {
		st.Nodes = map[uint64]*meta.Node{}
	}
	m.store.publish(st)
	return nil
}

// Close does nothing: the state is in memory and rebuilt from snapshot and log.
func (m *Meta) Close() error { return nil }
