package groups

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	testGroup = "g"
	// testSession is long enough that members formed by formGroup do not
	// expire while a test (under -race) works with them; tests of expiry
	// ask for short sessions.
	testSession  = 5 * time.Second
	shortSession = 150 * time.Millisecond
)

func testConfig() Config {
	return Config{
		MinSessionTimeout:     10 * time.Millisecond,
		MaxSessionTimeout:     time.Minute,
		InitialRebalanceDelay: 30 * time.Millisecond,
	}
}

func newTestCoordinator(t *testing.T, st Store, snap Snapshot) *Coordinator {
	t.Helper()
	c := New(st, snap, testConfig())
	t.Cleanup(c.Close)
	return c
}

func consumerMeta(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = topics
	return md.AppendTo(nil)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// joinSpec is one JoinGroup to send.
type joinSpec struct {
	version   int16
	group     string
	member    string
	instance  *string
	session   time.Duration
	rebalance time.Duration
	ptype     string
	protocols []kmsg.JoinGroupRequestProtocol
}

func rangeProtocol(topics ...string) []kmsg.JoinGroupRequestProtocol {
	return []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta(topics...)}}
}

func (s joinSpec) req() *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	switch {
	case s.version == 0:
		r.Version = 9
	case s.version > 0:
		r.Version = s.version
	default: // v0 is asked for with a negative version
		r.Version = 0
	}
	r.Group = s.group
	if r.Group == "" {
		r.Group = testGroup
	}
	r.MemberID = s.member
	r.InstanceID = s.instance
	if s.session == 0 {
		s.session = testSession
	}
	if s.rebalance == 0 {
		s.rebalance = time.Second
	}
	r.SessionTimeoutMillis = int32(s.session / time.Millisecond)
	r.RebalanceTimeoutMillis = int32(s.rebalance / time.Millisecond)
	r.ProtocolType = s.ptype
	if r.ProtocolType == "" {
		r.ProtocolType = "consumer"
	}
	r.Protocols = s.protocols
	if r.Protocols == nil {
		r.Protocols = rangeProtocol("t1")
	}
	return r
}

// join sends one JoinGroup. It is safe to call from any goroutine.
func join(t *testing.T, c *Coordinator, s joinSpec, client string) *kmsg.JoinGroupResponse {
	req := s.req()
	resp := c.JoinGroup(ctxT(t), req, ClientInfo{ClientID: client, Host: "/127.0.0.1"})
	if assert.NotNil(t, resp) {
		assert.Equal(t, req.Version, resp.Version, "response version")
	}
	return resp
}

func goJoin(t *testing.T, c *Coordinator, s joinSpec, client string) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- join(t, c, s, client) }()
	return ch
}

// joinDance joins as a v4+ dynamic member does: MEMBER_ID_REQUIRED, then
// the real join with the reserved id.
func joinDance(t *testing.T, c *Coordinator, s joinSpec, client string) *kmsg.JoinGroupResponse {
	first := join(t, c, s, client)
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		return first
	}
	s.member = first.MemberID
	return join(t, c, s, client)
}

func syncReq(group, member string, gen int32, plan map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	r.ProtocolType, r.Protocol = strPtr("consumer"), strPtr("range")
	for id, a := range plan {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func goSync(t *testing.T, c *Coordinator, req *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- c.SyncGroup(ctxT(t), req) }()
	return ch
}

func heartbeat(c *Coordinator, group, member string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return c.Heartbeat(context.Background(), r).ErrorCode
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a response")
	}
	var zero T
	return zero
}

// gm is a member of a group formed by formGroup.
type gm struct {
	id       string
	client   string
	instance *string
	gen      int32
	leader   bool
	assign   []byte
}

// formGroup has n members join concurrently and sync, and returns them
// (leader first). Instances, if given, make the members static.
func formGroup(t *testing.T, c *Coordinator, group string, n int, instances ...string) []gm {
	t.Helper()
	return formGroupWith(t, c, joinSpec{group: group}, n, instances...)
}

// formGroupWith is formGroup with every join based on spec.
func formGroupWith(t *testing.T, c *Coordinator, spec joinSpec, n int, instances ...string) []gm {
	t.Helper()
	group := spec.group
	joins := make([]<-chan *kmsg.JoinGroupResponse, n)
	for i := range n {
		s := spec
		if i < len(instances) {
			s.instance = strPtr(instances[i])
		}
		client := fmt.Sprintf("client%d", i)
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		go func() { ch <- joinDance(t, c, s, client) }()
		joins[i] = ch
	}
	var members []gm
	for i, ch := range joins {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode, "join of member %d", i)
		m := gm{id: r.MemberID, client: fmt.Sprintf("client%d", i), gen: r.Generation, leader: r.LeaderID == r.MemberID}
		if i < len(instances) {
			m.instance = strPtr(instances[i])
		}
		members = append(members, m)
	}
	plan := map[string][]byte{}
	for _, m := range members {
		plan[m.id] = []byte("assign-" + m.id)
	}
	var wg sync.WaitGroup
	for i := range members {
		var p map[string][]byte
		if members[i].leader {
			p = plan
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.SyncGroup(ctxT(t), syncReq(group, members[i].id, members[i].gen, p))
			members[i].assign = r.MemberAssignment
			assert.Zero(t, r.ErrorCode, "sync")
		}()
	}
	wg.Wait()
	for i, m := range members {
		if m.leader {
			members[0], members[i] = members[i], members[0]
		}
	}
	require.True(t, members[0].leader, "one member leads")
	return members
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// parkedInSync reports whether a member's SyncGroup is waiting for the
// leader's assignment.
func parkedInSync(c *Coordinator, group, member string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return false
	}
	m := g.members[member]
	return m != nil && m.syncCh != nil
}

// parkedInJoin reports whether a member's JoinGroup is waiting at the
// join barrier.
func parkedInJoin(c *Coordinator, group, member string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return false
	}
	m := g.members[member]
	return m != nil && m.joinCh != nil
}
