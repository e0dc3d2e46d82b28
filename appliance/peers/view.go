package peers

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/appliance/slots"
	"github.com/eddybroker/eddy/raftgroups"
)

// ReplicasPath is where a node serves its replica states.
const ReplicasPath = "/v1/internal/replicas"

// Report is what a node says about itself.
type Report struct {
	NodeID   uint64                   `json:"node_id"`
	Replicas []raftgroups.ReplicaInfo `json:"replicas"`
	// System is the node's version and boot slots (nodes before it
	// existed leave it out).
	System *slots.Status `json:"system,omitempty"`
}

// Config configures a View.
type Config struct {
	// Interval between polls of every node. 0 → 1 s.
	Interval time.Duration
	// AliveFor is how long a node counts as alive after its last answer.
	// 0 → 3 s.
	AliveFor time.Duration
	// LagTime is how long a follower may go without catching up with the
	// leader's log end and still be in sync (Kafka's
	// replica.lag.time.max.ms). 0 → 10 s.
	LagTime time.Duration
	// AdminToken is sent as a bearer token to other nodes' admin APIs.
	AdminToken string
	// TLS, when set, reaches other nodes' admin APIs over HTTPS with it
	// (auth.admin_tls): it verifies their certificates and presents this
	// node's. Nil means plain HTTP.
	TLS    *tls.Config
	Logger zerolog.Logger
	// System reports this node's version and slots; nil reports none.
	System func() slots.Status
}

type replicaKey struct{ shard, node uint64 }

type leaderInfo struct{ id, term uint64 }

// View is one node's picture of the cluster. Its methods are safe for
// concurrent use.
type View struct {
	cfg    Config
	host   *raftgroups.Host
	self   uint64
	client *http.Client

	mu       sync.RWMutex
	lastSeen map[uint64]time.Time
	replicas map[replicaKey]raftgroups.ReplicaInfo
	caughtUp map[replicaKey]time.Time
	// verified is when a replica was last seen at the leader's end, with
	// no benefit of the doubt: reassignment promotes learners by it.
	verified  map[replicaKey]time.Time
	leaderEnd map[uint64]int64 // the leader's log end at the previous poll, by shard
	leaders   map[uint64]leaderInfo
	now       func() time.Time
	started   time.Time
	// down records when Raft failed to reach a node; it counts as dead
	// until it answers a poll after that.
	down map[uint64]time.Time
	// systems is each node's last reported version and slots.
	systems map[uint64]slots.Status
}

// New returns a view of host's cluster; Run keeps it current.
func New(host *raftgroups.Host, cfg Config) *View {
	v := newView(host.NodeID(), cfg)
	v.host = host
	return v
}

// newView is a view with no host yet: the part tests drive with absorb.
func newView(self uint64, cfg Config) *View {
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.AliveFor == 0 {
		cfg.AliveFor = 3 * time.Second
	}
	if cfg.LagTime == 0 {
		cfg.LagTime = 10 * time.Second
	}
	return &View{
		cfg:       cfg,
		self:      self,
		client:    &http.Client{Timeout: cfg.Interval, Transport: adminTransport(cfg.TLS)},
		lastSeen:  map[uint64]time.Time{},
		replicas:  map[replicaKey]raftgroups.ReplicaInfo{},
		caughtUp:  map[replicaKey]time.Time{},
		verified:  map[replicaKey]time.Time{},
		leaderEnd: map[uint64]int64{},
		leaders:   map[uint64]leaderInfo{},
		down:      map[uint64]time.Time{},
		systems:   map[uint64]slots.Status{},
		now:       time.Now,
		started:   time.Now(),
	}
}

// Run polls until ctx ends.
func (v *View) Run(ctx context.Context) {
	t := time.NewTicker(v.cfg.Interval)
	defer t.Stop()
	for {
		v.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll asks every registered node for its replica states once, now.
func (v *View) Poll(ctx context.Context) {
	st := v.host.Meta()
	self := v.self
	reports := make(chan Report, len(st.Nodes))
	var wg sync.WaitGroup
	for id, n := range st.Nodes {
		if id == self {
			reports <- Report{NodeID: self, Replicas: v.host.Replicas(), System: systemOf(v.cfg.System)}
			continue
		}
		wg.Go(func() {
			r, err := v.fetch(ctx, n.AdminAddr)
			if err != nil {
				v.cfg.Logger.Debug().Err(err).Uint64("node", id).Msg("peer did not answer")
				return
			}
			if r.NodeID != id {
				v.cfg.Logger.Warn().Uint64("node", id).Uint64("answered_as", r.NodeID).Str("admin", n.AdminAddr).
					Msg("a node's admin address answers as another node; check advertise.admin")
				return
			}
			reports <- r
		})
	}
	wg.Wait()
	close(reports)
	v.absorb(reports)
}

func (v *View) fetch(ctx context.Context, admin string) (Report, error) {
	scheme := "http://"
	if v.cfg.TLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+admin+ReplicasPath, nil)
	if err != nil {
		return Report{}, err
	}
	if v.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+v.cfg.AdminToken)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return Report{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Report{}, fmt.Errorf("%s: %s", admin, resp.Status)
	}
	var r Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("%s: %w", admin, err)
	}
	return r, nil
}

// adminTransport is the HTTP transport to other nodes' admin APIs; nil
// (the default transport) for plain HTTP.
func adminTransport(tlsConf *tls.Config) http.RoundTripper {
	if tlsConf == nil {
		return nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConf
	return t
}

// absorb folds one round of reports into the view.
func (v *View) absorb(reports <-chan Report) {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	leaderEnd := map[uint64]int64{}
	leaders := map[uint64]leaderInfo{}
	var all []raftgroups.ReplicaInfo
	var from []uint64
	for r := range reports {
		v.lastSeen[r.NodeID] = now
		if r.System != nil {
			v.systems[r.NodeID] = *r.System
		}
		// Forget what the node no longer hosts.
		for k := range v.replicas {
			if k.node == r.NodeID {
				delete(v.replicas, k)
			}
		}
		for _, ri := range r.Replicas {
			v.replicas[replicaKey{ri.ShardID, r.NodeID}] = ri
			all = append(all, ri)
			from = append(from, r.NodeID)
			if ri.Leader {
				leaderEnd[ri.ShardID] = ri.EndOffset
			}
			// Every replica's view of the leader counts; the newest term wins.
			if ri.LeaderID != 0 && ri.Term >= leaders[ri.ShardID].term {
				leaders[ri.ShardID] = leaderInfo{ri.LeaderID, ri.Term}
			}
		}
	}
	for i, ri := range all {
		k := replicaKey{ri.ShardID, from[i]}
		if _, known := v.caughtUp[k]; !known {
			// As in Kafka, a replica starts in sync and leaves the ISR only
			// after lagging for the lag time. A node coming back from a
			// failure is not new: its entry is old, so it must catch up.
			v.caughtUp[k] = now
		}
		end, ok := leaderEnd[ri.ShardID]
		if !ok || ri.EndOffset < 0 {
			continue
		}
		// Caught up: at the leader's end now, or at least where the leader
		// ended one poll ago (appends keep moving the end).
		prev, hadPrev := v.leaderEnd[ri.ShardID]
		if ri.EndOffset >= end || (hadPrev && ri.EndOffset >= prev) {
			v.caughtUp[k] = now
			v.verified[k] = now
		}
	}
	v.leaderEnd = leaderEnd
	v.leaders = leaders
}

// Leader returns the leader of shard and its term as the replicas
// reported them at the last poll: for shards with no replica on this node.
func (v *View) Leader(shard uint64) (leader, term uint64, ok bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	li, ok := v.leaders[shard]
	return li.id, li.term, ok
}

// MarkUnreachable records that Raft could not connect to the node with
// this Raft address: it counts as dead until it next answers a poll.
func (v *View) MarkUnreachable(raftAddr string) {
	for id, n := range v.host.Meta().Nodes {
		if n.RaftAddr == raftAddr && id != v.self {
			v.mu.Lock()
			v.down[id] = v.now()
			v.mu.Unlock()
		}
	}
}

// Alive reports whether node answered recently. This node is always alive.
func (v *View) Alive(node uint64) bool {
	if node == v.self {
		return true
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.aliveLocked(node)
}

func (v *View) aliveLocked(node uint64) bool {
	seen, ok := v.lastSeen[node]
	if d, isDown := v.down[node]; isDown && (!ok || !seen.After(d)) {
		return false
	}
	if !ok {
		// Not polled yet: a node just started has not asked anyone. Give
		// it the benefit of the doubt for one liveness window.
		seen = v.started
	}
	return v.now().Sub(seen) < v.cfg.AliveFor
}

// InSync returns the replicas of shard that are in sync: the leader, and
// every follower on a live node that caught up with the leader within the
// lag time. The order of replicas is kept.
func (v *View) InSync(shard, leader uint64, replicas []uint64) []uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	now := v.now()
	out := make([]uint64, 0, len(replicas))
	for _, id := range replicas {
		if id == leader {
			out = append(out, id)
			continue
		}
		if id != v.self && !v.aliveLocked(id) {
			continue
		}
		// No data yet (a partition younger than the last poll) counts as
		// in sync, as a new partition's replicas are in Kafka.
		if t, ok := v.caughtUp[replicaKey{shard, id}]; !ok || now.Sub(t) < v.cfg.LagTime {
			out = append(out, id)
		}
	}
	return out
}

// CaughtUp reports whether node's replica of shard was seen at (or past
// where the leader was one poll before) the leader's log end in one of the
// last two polls. Unlike InSync it gives new replicas no benefit of the
// doubt.
func (v *View) CaughtUp(shard, node uint64) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.verified[replicaKey{shard, node}]
	return ok && v.now().Sub(t) <= 2*v.cfg.Interval+v.cfg.Interval/2
}

// Counts returns how many partition replicas each node hosts and leads,
// as last reported.
func (v *View) Counts() (replicas, leaders map[uint64]int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	replicas, leaders = map[uint64]int{}, map[uint64]int{}
	for k, ri := range v.replicas {
		if ri.Group {
			continue
		}
		replicas[k.node]++
		if ri.Leader {
			leaders[k.node]++
		}
	}
	return replicas, leaders
}

// Replica returns node's last reported state of shard.
func (v *View) Replica(shard, node uint64) (raftgroups.ReplicaInfo, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ri, ok := v.replicas[replicaKey{shard, node}]
	return ri, ok
}

// Handler serves this node's report at ReplicasPath.
func Handler(host *raftgroups.Host, system func() slots.Status) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		reps := host.Replicas()
		slices.SortFunc(reps, func(a, b raftgroups.ReplicaInfo) int { return cmp.Compare(a.ShardID, b.ShardID) })
		json.NewEncoder(w).Encode(Report{NodeID: host.NodeID(), Replicas: reps, System: systemOf(system)})
	})
}

func systemOf(f func() slots.Status) *slots.Status {
	if f == nil {
		return nil
	}
	st := f()
	return &st
}

// System returns a node's last reported version and slots.
func (v *View) System(node uint64) (slots.Status, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	st, ok := v.systems[node]
	return st, ok
}
