package groups

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Kafka's defaults for the settings Config leaves at zero.
const (
	defaultMinSessionTimeout     = 6 * time.Second
	defaultMaxSessionTimeout     = 30 * time.Minute
	defaultInitialRebalanceDelay = 3 * time.Second

	// newMemberJoinTimeout bounds how long a member whose first JoinGroup
	// was never answered is kept (Kafka's group.new.member.join.timeout).
	newMemberJoinTimeout = 5 * time.Minute
	// maxMetadataBytes is Kafka's offset.metadata.max.bytes default.
	maxMetadataBytes = 4096
	// backgroundSaveTimeout bounds persisting a group that became Empty,
	// which no client request waits for.
	backgroundSaveTimeout = 30 * time.Second
)

// Config tunes a Coordinator. The zero value is Kafka's defaults.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min.session.timeout.ms, default 6s, and
	// group.max.session.timeout.ms, default 30m).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an Empty
	// group waits for more members (group.initial.rebalance.delay.ms,
	// default 3s); it is extended while members keep arriving, up to the
	// rebalance timeout. A negative value means no delay.
	InitialRebalanceDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
}

// ClientInfo is what the broker knows of the connection a JoinGroup came
// on, reported by DescribeGroups.
type ClientInfo struct {
	ClientID string
	Host     string
}

// Coordinator coordinates the groups of one group shard. All methods are
// safe for concurrent use. JoinGroup and SyncGroup park until their
// barrier completes, ctx ends or the coordinator closes; the other
// handlers wait at most for the Store.
//
// Responses are the caller's, but their byte slices (protocol metadata,
// assignments) are shared with the coordinator's state: encode them, do
// not modify them. Byte slices of requests are copied, so the caller may
// reuse its buffers once a handler returns.
type Coordinator struct {
	store Store
	cfg   Config
	log   zerolog.Logger

	mu     sync.Mutex
	closed bool
	groups map[string]*group
	// plocks serialise the Store writes of each group (see lockGroup).
	plocks map[string]*persistLock
	timers timerHeap
	seq    uint64

	kick chan struct{} // wakes the timer loop when an earlier timer is set
	done chan struct{} // closed by Close
	// base is cancelled by Close; the coordinator's own Store writes use it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a coordinator serving the groups in snap, which it takes
// ownership of. Members of persisted Stable generations keep their ids,
// generation and assignments; their session timers start now.
func New(store Store, snap Snapshot, cfg Config) *Coordinator {
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = defaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = defaultMaxSessionTimeout
	}
	switch {
	case cfg.InitialRebalanceDelay == 0:
		cfg.InitialRebalanceDelay = defaultInitialRebalanceDelay
	case cfg.InitialRebalanceDelay < 0:
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		store:  store,
		cfg:    cfg,
		log:    cfg.Logger,
		groups: make(map[string]*group),
		plocks: make(map[string]*persistLock),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		base:   base,
		cancel: cancel,
	}
	c.restore(snap)
	c.wg.Add(1)
	go c.runTimers()
	return c
}

// restore rebuilds in-memory groups from their persisted form.
func (c *Coordinator) restore(snap Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, rec := range snap.Groups {
		g := newGroup(name)
		g.protocolType = rec.ProtocolType
		g.generation = rec.Generation
		if rec.State == StateStable && len(rec.Members) > 0 {
			g.state = stateStable
			g.protocol = rec.Protocol
			g.leader = rec.Leader
			for _, pm := range rec.Members {
				m := &member{
					id:         pm.ID,
					instanceID: pm.InstanceID,
					clientID:   pm.ClientID,
					clientHost: pm.ClientHost,
					session:    time.Duration(pm.SessionTimeoutMs) * time.Millisecond,
					rebalance:  time.Duration(pm.RebalanceTimeoutMs) * time.Millisecond,
					protocols:  pm.Protocols,
					assignment: pm.Assignment,
					seq:        c.nextSeq(),
				}
				g.members[m.id] = m
				if m.instanceID != nil {
					g.static[*m.instanceID] = m.id
				}
				c.touch(g, m, m.session)
			}
			if _, ok := g.members[g.leader]; !ok {
				g.leader = g.sortedMembers()[0].id
			}
		}
		c.groups[name] = g
	}
	for name, offs := range snap.Offsets {
		g := c.groups[name]
		if g == nil {
			// Offsets without metadata: a group used only for commits.
			g = newGroup(name)
			c.groups[name] = g
		}
		for _, o := range offs {
			g.offsets[TopicPartition{o.Topic, o.Partition}] = o
		}
	}
}

// Close stops the coordinator: parked JoinGroup and SyncGroup requests
// return NOT_COORDINATOR at once, later requests get NOT_COORDINATOR, and
// Close returns when the coordinator's own goroutines have ended. Handlers
// already waiting for the Store finish with its answer.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Groups returns the ids of the groups this coordinator knows, sorted.
func (c *Coordinator) Groups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.groups))
	for name, g := range c.groups {
		if g.state != stateDead {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Group returns a group's current state in its persisted form (State may
// be any of the five), with members in join order and their current
// assignments. The result is the caller's; byte slices are shared and must
// not be modified.
func (c *Coordinator) Group(name string) (Group, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil || g.state == stateDead {
		return Group{}, false
	}
	return g.record(g.state, nil, c.nowMs()), true
}

// Offsets returns a group's committed offsets by topic and partition; the
// slice is the caller's.
func (c *Coordinator) Offsets(name string) []Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil {
		return nil
	}
	return g.sortedOffsets()
}

func (c *Coordinator) now() time.Time { return c.cfg.Now() }
func (c *Coordinator) nowMs() int64   { return c.cfg.Now().UnixMilli() }

func (c *Coordinator) nextSeq() uint64 {
	c.seq++
	return c.seq
}

// newMemberID returns a member id the way Kafka makes them: the instance
// id for static members, else the client id, then a random UUID.
func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// persistLock serialises one group's Store writes, so that the order in
// which they are applied in memory is the order they reached the Store
// (Raft): two commits of one partition, or two saves of one group, can
// then never be persisted in one order and visible in the other.
type persistLock struct {
	ch   chan struct{}
	refs int
}

var errClosed = errors.New("groups: coordinator closed")

// lockGroup takes the group's persist lock, waiting until ctx ends or the
// coordinator closes. It must be called without c.mu held, as must the
// returned unlock, which is safe to call more than once.
func (c *Coordinator) lockGroup(ctx context.Context, name string) (unlock func(), err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	l := c.plocks[name]
	if l == nil {
		l = &persistLock{ch: make(chan struct{}, 1)}
		c.plocks[name] = l
	}
	l.refs++
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(c.plocks, name)
		}
		c.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	case <-c.done:
		release()
		return nil, errClosed
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.ch
			release()
		})
	}, nil
}

// storeContext bounds a Store call by ctx and by the coordinator's life:
// once closed, the coordinator's answers no longer matter.
func (c *Coordinator) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.base, cancel)
	return sctx, func() {
		stop()
		cancel()
	}
}

// saveEmptyLater persists a group that just became Empty. No request waits
// for it, as in Kafka: if it fails, the last persisted generation
// survives a failover and its members' sessions expire there.
func (c *Coordinator) saveEmptyLater(name string) {
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.base, backgroundSaveTimeout)
		defer cancel()
		unlock, err := c.lockGroup(ctx, name)
		if err != nil {
			return
		}
		defer unlock()
		c.mu.Lock()
		g := c.groups[name]
		if c.closed || g == nil || g.state != stateEmpty {
			c.mu.Unlock()
			return
		}
		rec := g.record(stateEmpty, nil, c.nowMs())
		c.mu.Unlock()
		if err := c.store.SaveGroup(ctx, rec); err != nil {
			c.log.Warn().Err(err).Str("group", name).Int32("generation", rec.Generation).
				Msg("could not persist empty group; its last generation stays persisted")
		}
	}()
}

// maybeForget drops a group that exists nowhere but in memory: Empty,
// never through a rebalance (so never persisted), without offsets or
// reserved member ids. Such groups are left by simple commits whose
// offsets were deleted and by MEMBER_ID_REQUIRED ids never used.
func (c *Coordinator) maybeForget(g *group) {
	if c.groups[g.name] == g && g.state == stateEmpty && g.generation == 0 &&
		len(g.members) == 0 && len(g.offsets) == 0 && len(g.pending) == 0 {
		delete(c.groups, g.name)
	}
}
