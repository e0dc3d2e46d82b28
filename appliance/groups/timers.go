package groups

import (
	"container/heap"
	"time"
)

// The coordinator's timers live in one heap served by one goroutine, so
// Close can stop them all and wait for the only goroutine that fires them.
// Entries are never removed early: each carries a token, and an entry
// whose token is no longer the one its group or member holds is stale and
// ignored when it comes due.

type timerKind uint8

const (
	timerSession timerKind = iota // a member's session, or a pending member id's reservation
	timerJoin                     // a rebalance's join barrier
	timerSync                     // the deadline for SyncGroup after a join
)

type timerEntry struct {
	at     time.Time
	kind   timerKind
	group  string
	member string
	token  uint64
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// schedule adds a timer and returns its token. c.mu must be held.
func (c *Coordinator) schedule(at time.Time, kind timerKind, group, member string) uint64 {
	tok := c.nextSeq()
	heap.Push(&c.timers, timerEntry{at: at, kind: kind, group: group, member: member, token: tok})
	if c.timers[0].token == tok {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return tok
}

// touch restarts m's session: it expires d from now unless touched again.
func (c *Coordinator) touch(g *group, m *member, d time.Duration) {
	m.deadline = c.now().Add(d)
	if m.timer == 0 || m.deadline.Before(m.timerAt) {
		m.timer = c.schedule(m.deadline, timerSession, g.name, m.id)
		m.timerAt = m.deadline
	}
}

func (c *Coordinator) runTimers() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.mu.Lock()
		now := c.now()
		for len(c.timers) > 0 && !c.timers[0].at.After(now) {
			c.fire(heap.Pop(&c.timers).(timerEntry), now)
		}
		wait := time.Hour
		if len(c.timers) > 0 {
			wait = max(c.timers[0].at.Sub(now), 0)
		}
		c.mu.Unlock()
		t.Reset(wait)
		select {
		case <-c.done:
			return
		case <-c.kick:
		case <-t.C:
		}
	}
}

// fire handles one due timer. c.mu is held.
func (c *Coordinator) fire(e timerEntry, now time.Time) {
	if c.closed {
		return
	}
	g := c.groups[e.group]
	if g == nil {
		return
	}
	switch e.kind {
	case timerJoin:
		if g.joinTimer == e.token && g.state == statePreparing {
			g.joinTimer = 0
			c.joinTimerFired(g)
		}
	case timerSync:
		if g.syncTimer == e.token {
			g.syncTimer = 0
			c.syncTimerFired(g)
		}
	case timerSession:
		if tok, ok := g.pending[e.member]; ok && tok == e.token {
			delete(g.pending, e.member)
			c.log.Debug().Str("group", g.name).Str("member", e.member).Msg("pending member id expired")
			c.tryCompleteJoin(g)
			c.maybeForget(g)
			return
		}
		m := g.members[e.member]
		if m == nil || m.timer != e.token {
			return
		}
		m.timer = 0
		if now.Before(m.deadline) {
			m.timer = c.schedule(m.deadline, timerSession, g.name, m.id)
			m.timerAt = m.deadline
			return
		}
		// A member parked at a barrier is alive by definition; its session
		// restarts when the barrier answers it.
		if !m.isNew && (m.awaitingJoin || m.awaitingSync) {
			return
		}
		c.log.Info().Str("group", g.name).Str("member", m.id).Msg("member session expired")
		c.removeMember(g, m, "session timeout of "+m.id)
	}
}
