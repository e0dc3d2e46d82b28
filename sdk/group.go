package sdk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Assignor names a client-side partition assignment strategy. Every
// member of a group must share at least one with the others.
type Assignor string

// Assignors, as Kafka names them.
const (
	// CooperativeSticky moves as few partitions as possible and lets
	// members keep consuming the partitions they keep while a rebalance
	// runs. The default, as in kgo.
	CooperativeSticky Assignor = "cooperative-sticky"
	// Sticky balances like CooperativeSticky but revokes everything at
	// each rebalance (eager).
	Sticky Assignor = "sticky"
	// Range gives each member a contiguous range of every topic's
	// partitions (eager). librdkafka clients such as kcat offer it.
	Range Assignor = "range"
	// RoundRobin deals partitions out one at a time (eager).
	RoundRobin Assignor = "roundrobin"
)

// Assignors lists every assignor this package knows.
var Assignors = []Assignor{CooperativeSticky, Sticky, Range, RoundRobin}

// ParseAssignor returns the assignor named s.
func ParseAssignor(s string) (Assignor, error) {
	for _, a := range Assignors {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("sdk: unknown assignor %q (want one of %v)", s, Assignors)
}

func (a Assignor) balancer() (kgo.GroupBalancer, error) {
	switch a {
	case CooperativeSticky:
		return kgo.CooperativeStickyBalancer(), nil
	case Sticky:
		return kgo.StickyBalancer(), nil
	case Range:
		return kgo.RangeBalancer(), nil
	case RoundRobin:
		return kgo.RoundRobinBalancer(), nil
	}
	_, err := ParseAssignor(string(a))
	return nil, err
}

// GroupOption configures a GroupConsumer.
type GroupOption func(*groupOptions)

type groupOptions struct {
	assignors      []Assignor
	manual         bool
	commitInterval time.Duration
	start          kgo.Offset
	instanceID     string
	sessionTimeout time.Duration
	onAssigned     func(map[string][]int32)
	onRevoked      func(map[string][]int32)
	onError        func(error)
	kgoOpts        []kgo.Opt
}

// WithAssignors sets the assignors this member offers, preferred first.
// Default: CooperativeSticky. Offer Range too to share a group with
// librdkafka clients, which do not speak the cooperative protocol.
func WithAssignors(a ...Assignor) GroupOption {
	return func(o *groupOptions) { o.assignors = append([]Assignor(nil), a...) }
}

// ManualCommit turns automatic commits off: offsets are committed only by
// GroupConsumer.Commit. Records processed but not committed when this
// member loses a partition are read again by the partition's next owner.
func ManualCommit() GroupOption {
	return func(o *groupOptions) { o.manual = true }
}

// CommitInterval sets how often processed records are committed in the
// automatic mode. Default: 5 s. Commits also happen before partitions are
// revoked and when the consumer closes.
func CommitInterval(d time.Duration) GroupOption {
	return func(o *groupOptions) { o.commitInterval = d }
}

// StartFromBeginning makes partitions the group has no committed offset
// for start at their oldest record. The default, as in Kafka, is the
// end: only records produced after the group first joins.
func StartFromBeginning() GroupOption {
	return func(o *groupOptions) { o.start = kgo.NewOffset().AtStart() }
}

// WithInstanceID makes the member static (Kafka's group.instance.id): a
// member that restarts with the same id within the session timeout gets
// its partitions back without a rebalance.
func WithInstanceID(id string) GroupOption {
	return func(o *groupOptions) { o.instanceID = id }
}

// WithSessionTimeout sets how long the coordinator waits without a
// heartbeat before it removes the member and moves its partitions.
// Default: 45 s, as in Kafka; the broker accepts 6 s to 30 min unless its
// groups config says otherwise. Heartbeats are sent every sixth of it (at
// most every 3 s), so the other members hear of a rebalance promptly.
func WithSessionTimeout(d time.Duration) GroupOption {
	return func(o *groupOptions) { o.sessionTimeout = d }
}

// OnAssigned calls fn with the partitions this member gains at each
// rebalance, before their records are returned.
func OnAssigned(fn func(map[string][]int32)) GroupOption {
	return func(o *groupOptions) { o.onAssigned = fn }
}

// OnRevoked calls fn with the partitions this member gives up (or loses,
// when it was removed from the group), after the records already returned
// from them were processed and, in the automatic mode, committed.
func OnRevoked(fn func(map[string][]int32)) GroupOption {
	return func(o *groupOptions) { o.onRevoked = fn }
}

// OnError calls fn with each error the consumer recovers from by itself
// (a broker unreachable, a coordinator moving, a rebalance failing): the
// client retries, and Run carries on. Errors it cannot recover from end
// Run instead.
func OnError(fn func(error)) GroupOption {
	return func(o *groupOptions) { o.onError = fn }
}

// WithGroupKgoOptions passes options to the consumer's kgo client, after
// the SDK's own.
func WithGroupKgoOptions(opts ...kgo.Opt) GroupOption {
	return func(o *groupOptions) { o.kgoOpts = append(o.kgoOpts, opts...) }
}

// GroupConsumer is a member of a consumer group: the brokers' group
// coordinator shares the topics' partitions among the members, and each
// member reads only its own. Run delivers records; a record's offset is
// committed only after the callback returned for it, so a crash means
// records are read again (at least once), never skipped.
type GroupConsumer struct {
	cl    *kgo.Client
	group string
	opts  groupOptions

	mu       sync.Mutex
	assigned map[string][]int32
	running  bool
}

// NewGroupConsumer joins group as a consumer of topics. The member joins
// when Run first polls; Close leaves the group.
func (c *Client) NewGroupConsumer(group string, topics []string, opts ...GroupOption) (*GroupConsumer, error) {
	if group == "" {
		return nil, errors.New("sdk: a consumer group needs a name")
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("sdk: group %s: no topic to consume", group)
	}
	o := groupOptions{assignors: []Assignor{CooperativeSticky}, start: kgo.NewOffset().AtEnd()}
	for _, opt := range opts {
		opt(&o)
	}
	g := &GroupConsumer{group: group, opts: o, assigned: map[string][]int32{}}
	balancers := make([]kgo.GroupBalancer, 0, len(o.assignors))
	for _, a := range o.assignors {
		b, err := a.balancer()
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		balancers = append(balancers, b)
	}
	kopts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(o.start),
		kgo.Balancers(balancers...),
		// Rebalances wait until the records a poll returned are processed
		// (and marked), so what is committed on revoke is exactly what
		// was processed.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			g.mu.Lock()
			for t, ps := range parts {
				g.assigned[t] = append(g.assigned[t], ps...)
				slices.Sort(g.assigned[t])
			}
			g.mu.Unlock()
			if o.onAssigned != nil {
				o.onAssigned(parts)
			}
		}),
		kgo.OnPartitionsRevoked(g.revoked(true)),
		kgo.OnPartitionsLost(g.revoked(false)),
	}
	if o.manual {
		kopts = append(kopts, kgo.DisableAutoCommit())
	} else {
		kopts = append(kopts, kgo.AutoCommitMarks())
		if o.commitInterval > 0 {
			kopts = append(kopts, kgo.AutoCommitInterval(o.commitInterval))
		}
	}
	if o.instanceID != "" {
		kopts = append(kopts, kgo.InstanceID(o.instanceID))
	}
	if o.sessionTimeout > 0 {
		// Members learn of a rebalance from their heartbeats: a short
		// session wants them frequent, or the survivors of a failure
		// notice late.
		kopts = append(kopts, kgo.SessionTimeout(o.sessionTimeout), kgo.HeartbeatInterval(min(3*time.Second, o.sessionTimeout/6)))
	}
	cl, err := c.NewKgo(append(kopts, o.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", group, err)
	}
	g.cl = cl
	return g, nil
}

// revoked handles partitions leaving this member: on a revoke (commit
// allowed) the automatic mode commits what was processed first.
func (g *GroupConsumer) revoked(commit bool) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
		if commit && !g.opts.manual {
			// If this fails (kgo logs why), the next owner reads these
			// records again: at least once.
			_ = cl.CommitMarkedOffsets(ctx)
		}
		g.mu.Lock()
		for t, ps := range parts {
			g.assigned[t] = slices.DeleteFunc(g.assigned[t], func(p int32) bool { return slices.Contains(ps, p) })
			if len(g.assigned[t]) == 0 {
				delete(g.assigned, t)
			}
		}
		g.mu.Unlock()
		if g.opts.onRevoked != nil {
			g.opts.onRevoked(parts)
		}
	}
}

// Group returns the group's name.
func (g *GroupConsumer) Group() string { return g.group }

// Assigned returns the partitions this member owns now, per topic.
func (g *GroupConsumer) Assigned() map[string][]int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]int32, len(g.assigned))
	for t, ps := range maps.All(g.assigned) {
		out[t] = slices.Clone(ps)
	}
	return out
}

// Run delivers this member's records to fn, in offset order within each
// partition, until ctx ends (Run returns nil) or fn returns an error (Run
// returns it; ErrStop stops cleanly). In the automatic mode a record is
// committed after fn returned nil for it. Run may be called once.
func (g *GroupConsumer) Run(ctx context.Context, fn func(*kgo.Record) error) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return errors.New("sdk: GroupConsumer.Run called twice")
	}
	g.running = true
	g.mu.Unlock()
	for {
		fetches := g.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			g.cl.AllowRebalance()
			return nil
		}
		err := g.fetchError(fetches)
		if err == nil {
			err = g.process(fetches, fn)
		}
		g.cl.AllowRebalance()
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// process hands the records of one poll to fn, marking each one
// processed as soon as fn returns for it.
func (g *GroupConsumer) process(fetches kgo.Fetches, fn func(*kgo.Record) error) error {
	for it := fetches.RecordIter(); !it.Done(); {
		r := it.Next()
		if err := fn(r); err != nil {
			return err
		}
		if !g.opts.manual {
			g.cl.MarkCommitRecords(r)
		}
	}
	return nil
}

// fetchError returns the first error of a poll that retrying cannot
// cure; the others kgo retries by itself, and OnError hears of them.
func (g *GroupConsumer) fetchError(fetches kgo.Fetches) error {
	var first error
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || first != nil {
			return
		}
		if t != "" {
			err = fmt.Errorf("sdk: consume %s/%d: %w", t, p, err)
		} else {
			err = fmt.Errorf("sdk: group %s: %w", g.group, err)
		}
		if fatalGroupError(err) {
			first = err
		} else if g.opts.onError != nil {
			g.opts.onError(err)
		}
	})
	return first
}

// fatalGroupError reports errors no retry cures: the member is not
// allowed in, or its configuration does not fit the group.
func fatalGroupError(err error) bool {
	for _, fatal := range []error{
		kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.InvalidGroupID, kerr.InconsistentGroupProtocol, kerr.GroupMaxSizeReached,
		kerr.FencedInstanceID, kerr.UnsupportedVersion, kerr.InvalidSessionTimeout,
	} {
		if errors.Is(err, fatal) {
			return true
		}
	}
	return false
}

// Commit commits, for each record's partition, the offset after the
// record: the partition's next reader starts there. It is how offsets are
// committed with ManualCommit; it may be called from Run's callback.
func (g *GroupConsumer) Commit(ctx context.Context, records ...*kgo.Record) error {
	if err := g.cl.CommitRecords(ctx, records...); err != nil {
		return fmt.Errorf("sdk: commit offsets of group %s: %w", g.group, err)
	}
	return nil
}

// Close leaves the group, committing what was processed first in the
// automatic mode, so the remaining members take over at once. Cancel
// Run's context first: Close waits for the records being processed. A static
// member (WithInstanceID) does not leave: its partitions wait for it
// until the session timeout.
func (g *GroupConsumer) Close() {
	g.cl.Close()
}

// Kgo returns the consumer's kgo client, for what the helpers do not
// cover (lag, pausing partitions). Do not close it; Close the consumer.
func (g *GroupConsumer) Kgo() *kgo.Client { return g.cl }
