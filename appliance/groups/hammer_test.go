package groups

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hammerClient is a simplified consumer: join, sync (assigning if it
// leads), heartbeat and commit, rejoin on the errors that call for it.
// While chaos is on it also abandons requests, leaves and goes silent.
type hammerClient struct {
	c        *Coordinator
	name     string
	instance *string
	chaos    *atomic.Bool
	stop     *atomic.Bool
	rng      *rand.Rand

	memberID string
	gen      int32
	unknown  atomic.Int64 // unexpected error codes seen

	mu     sync.Mutex // guards synced, read by the test
	synced struct {
		memberID string
		gen      int32
		assign   []byte
	}
}

func (h *hammerClient) lastSync() (string, int32, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.synced.memberID, h.synced.gen, h.synced.assign
}

func (h *hammerClient) expected(code int16) bool {
	switch code {
	case 0, kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code, kerr.UnknownMemberID.Code,
		kerr.MemberIDRequired.Code, kerr.FencedInstanceID.Code, kerr.NotCoordinator.Code:
		return true
	}
	h.unknown.Add(1)
	return false
}

func (h *hammerClient) ctx() (context.Context, context.CancelFunc) {
	d := 5 * time.Second
	if h.chaos.Load() && h.rng.IntN(10) == 0 {
		d = time.Duration(h.rng.IntN(30)) * time.Millisecond // the client gives up
	}
	return context.WithTimeout(context.Background(), d)
}

func (h *hammerClient) run() {
	for !h.stop.Load() {
		if !h.joinAndSync() {
			continue
		}
		h.heartbeatUntilRejoin()
	}
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 5
	r.Group = testGroup
	r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: h.memberID, InstanceID: h.instance}}
	h.c.LeaveGroup(context.Background(), r)
}

func (h *hammerClient) joinAndSync() bool {
	req := joinSpec{member: h.memberID, instance: h.instance, session: 500 * time.Millisecond, rebalance: time.Second,
		protocols: rangeProtocol("t1", "t2")}.req()
	ctx, cancel := h.ctx()
	jr := h.c.JoinGroup(ctx, req, ClientInfo{ClientID: h.name})
	cancel()
	h.expected(jr.ErrorCode)
	switch jr.ErrorCode {
	case 0:
	case kerr.MemberIDRequired.Code:
		h.memberID = jr.MemberID
		return false
	case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
		h.memberID = ""
		return false
	default:
		return false
	}
	h.memberID, h.gen = jr.MemberID, jr.Generation
	var plan map[string][]byte
	if jr.LeaderID == jr.MemberID && !jr.SkipAssignment {
		plan = map[string][]byte{}
		for _, m := range jr.Members {
			plan[m.MemberID] = []byte(fmt.Sprintf("%d/%s", jr.Generation, m.MemberID))
		}
	}
	sreq := syncReq(testGroup, h.memberID, h.gen, plan)
	sreq.InstanceID = h.instance
	ctx, cancel = h.ctx()
	sr := h.c.SyncGroup(ctx, sreq)
	cancel()
	h.expected(sr.ErrorCode)
	if sr.ErrorCode != 0 {
		if sr.ErrorCode == kerr.UnknownMemberID.Code || sr.ErrorCode == kerr.FencedInstanceID.Code {
			h.memberID = ""
		}
		return false
	}
	h.mu.Lock()
	h.synced.memberID, h.synced.gen, h.synced.assign = h.memberID, h.gen, sr.MemberAssignment
	h.mu.Unlock()
	return true
}

func (h *hammerClient) heartbeatUntilRejoin() {
	for !h.stop.Load() {
		if h.chaos.Load() {
			switch h.rng.IntN(200) {
			case 0: // leave
				r := kmsg.NewPtrLeaveGroupRequest()
				r.Version = 5
				r.Group = testGroup
				r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: h.memberID, InstanceID: h.instance}}
				h.c.LeaveGroup(context.Background(), r)
				h.memberID = ""
				return
			case 1: // go silent past the session timeout
				time.Sleep(600 * time.Millisecond)
			case 2: // restart: a static member comes back with a new id
				if h.instance != nil {
					h.memberID = ""
					return
				}
			}
		}
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = 4
		req.Group, req.MemberID, req.Generation, req.InstanceID = testGroup, h.memberID, h.gen, h.instance
		code := h.c.Heartbeat(context.Background(), req).ErrorCode
		h.expected(code)
		switch code {
		case 0:
		case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
			h.memberID = ""
			return
		default:
			return
		}
		if h.rng.IntN(3) == 0 {
			ctx, cancel := h.ctx()
			cr := h.c.OffsetCommit(ctx, commitReq(testGroup, h.memberID, h.gen, "t1", int32(h.rng.IntN(4)), h.rng.Int64N(1000)))
			cancel()
			code := commitCode(cr)
			if code != kerr.RequestTimedOut.Code {
				h.expected(code)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHammer(t *testing.T) {
	if testing.Short() {
		t.Skip("hammer")
	}
	st := newFakeStore()
	st.setLatency(time.Millisecond)
	c := newTestCoordinator(t, st, Snapshot{})
	var chaos, stop atomic.Bool
	chaos.Store(true)
	clients := make([]*hammerClient, 8)
	var wg sync.WaitGroup
	for i := range clients {
		h := &hammerClient{c: c, name: fmt.Sprint("c", i), chaos: &chaos, stop: &stop, rng: rand.New(rand.NewPCG(uint64(i), 1))}
		if i%2 == 0 {
			h.instance = strPtr(fmt.Sprint("instance", i))
		}
		clients[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.run()
		}()
	}
	// Admin reads alongside.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			c.DescribeGroup(testGroup)
			c.ListGroups(nil, nil)
			c.OffsetFetch(testGroup, nil)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	chaos.Store(false)
	// Without chaos the group converges on one Stable generation of all
	// eight members, each holding the assignment the group has for it.
	eventually(t, "the group converges", func() bool {
		g, ok := c.Group(testGroup)
		if !ok || g.State != StateStable || len(g.Members) != len(clients) {
			return false
		}
		assigned := map[string][]byte{}
		for _, m := range g.Members {
			assigned[m.ID] = m.Assignment
		}
		for _, h := range clients {
			id, gen, assign := h.lastSync()
			if gen != g.Generation || string(assigned[id]) != string(assign) || assigned[id] == nil {
				return false
			}
		}
		return true
	})
	stop.Store(true)
	wg.Wait()
	for _, h := range clients {
		require.Zero(t, h.unknown.Load(), "%s saw unexpected error codes", h.name)
	}
	eventually(t, "the group is persisted empty", func() bool {
		g, ok := st.group(testGroup)
		return ok && g.State == StateEmpty
	})
}
