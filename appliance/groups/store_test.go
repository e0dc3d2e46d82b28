package groups

import (
	"context"
	"sync"
	"time"
)

// fakeStore is an in-memory Store with an injectable failure and latency.
type fakeStore struct {
	mu      sync.Mutex
	groups  map[string]Group
	offsets map[string]map[TopicPartition]Offset
	saves   []Group
	fail    error
	latency time.Duration
}

func newFakeStore() *fakeStore {
	return &fakeStore{groups: map[string]Group{}, offsets: map[string]map[TopicPartition]Offset{}}
}

func (s *fakeStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *fakeStore) setLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// begin waits the injected latency and returns the injected failure.
func (s *fakeStore) begin(ctx context.Context) error {
	s.mu.Lock()
	lat, fail := s.latency, s.fail
	s.mu.Unlock()
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fail
}

func (s *fakeStore) SaveGroup(ctx context.Context, g Group) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[g.Name] = g
	s.saves = append(s.saves, g)
	return nil
}

func (s *fakeStore) DeleteGroup(ctx context.Context, group string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, group)
	delete(s.offsets, group)
	return nil
}

func (s *fakeStore) CommitOffsets(ctx context.Context, group string, offsets []Offset) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.offsets[group]
	if m == nil {
		m = map[TopicPartition]Offset{}
		s.offsets[group] = m
	}
	for _, o := range offsets {
		m[TopicPartition{o.Topic, o.Partition}] = o
	}
	return nil
}

func (s *fakeStore) DeleteOffsets(ctx context.Context, group string, parts []TopicPartition) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tp := range parts {
		delete(s.offsets[group], tp)
	}
	return nil
}

// snapshot is what a new shard leader would read.
func (s *fakeStore) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Groups: map[string]Group{}, Offsets: map[string][]Offset{}}
	for k, g := range s.groups {
		snap.Groups[k] = g
	}
	for k, m := range s.offsets {
		for _, o := range m {
			snap.Offsets[k] = append(snap.Offsets[k], o)
		}
	}
	return snap
}

func (s *fakeStore) group(name string) (Group, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	return g, ok
}

func (s *fakeStore) saveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.saves)
}
