package peers

import (
	"slices"
	"testing"
	"time"

	"github.com/eddybroker/eddy/raftgroups"
)

// newTestView is a View without a host: only absorb, InSync and Alive's
// lastSeen logic are exercised, with a controlled clock. Node 9 plays
// "self" so that nodes 1-3 are judged by their reports.
func newTestView(now *time.Time) *View {
	v := newView(9, Config{AliveFor: 3 * time.Second, LagTime: 10 * time.Second})
	v.now = func() time.Time { return *now }
	v.started = *now
	return v
}

func round(v *View, reports ...Report) {
	ch := make(chan Report, len(reports))
	for _, r := range reports {
		ch <- r
	}
	close(ch)
	v.absorb(ch)
}

func rep(node uint64, end int64, leader bool) Report {
	return Report{NodeID: node, Replicas: []raftgroups.ReplicaInfo{{ShardID: 7, EndOffset: end, Leader: leader}}}
}

func inSync(v *View) []uint64 { return v.InSync(7, 1, []uint64{1, 2, 3}) }

func TestISR(t *testing.T) {
	now := time.Unix(1000, 0)
	v := newTestView(&now)
	// Leader 1 at 100; followers at 100 and 40: a new replica starts in sync.
	round(v, rep(1, 100, true), rep(2, 100, false), rep(3, 40, false))
	if got := inSync(v); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("at first sight: %v", got)
	}
	// Appends move the end: a follower at the previous end still counts.
	now = now.Add(time.Second)
	round(v, rep(1, 200, true), rep(2, 150, false), rep(3, 60, false))
	// 11 s of node 3 never reaching the leader's recent end: out.
	for range 11 {
		now = now.Add(time.Second)
		round(v, rep(1, 300, true), rep(2, 300, false), rep(3, 70, false))
	}
	if got := inSync(v); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("after node 3 lagged 11 s: %v", got)
	}
	// It catches up: back in.
	now = now.Add(time.Second)
	round(v, rep(1, 300, true), rep(2, 300, false), rep(3, 300, false))
	if got := inSync(v); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("after catching up: %v", got)
	}
	// Node 2 stops answering: out after AliveFor.
	for range 4 {
		now = now.Add(time.Second)
		round(v, rep(1, 300, true), rep(3, 300, false))
	}
	if got := inSync(v); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("after node 2 went silent: %v", got)
	}
}
