package groups

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestThreeMembersOneGeneration(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})

	// Each member does the v4+ MEMBER_ID_REQUIRED dance, concurrently.
	var joins []<-chan *kmsg.JoinGroupResponse
	for i := range 3 {
		client := fmt.Sprintf("client%d", i)
		first := join(t, c, joinSpec{}, client)
		require.Equal(t, kerr.MemberIDRequired.Code, first.ErrorCode)
		require.True(t, strings.HasPrefix(first.MemberID, client+"-"), "member id %q", first.MemberID)
		require.EqualValues(t, -1, first.Generation)
		joins = append(joins, goJoin(t, c, joinSpec{member: first.MemberID, protocols: rangeProtocol(fmt.Sprintf("topic%d", i))}, client))
	}
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range joins {
		resps = append(resps, recv(t, ch))
	}
	leader := resps[0].LeaderID
	var leaderResp *kmsg.JoinGroupResponse
	for _, r := range resps {
		require.Zero(t, r.ErrorCode)
		require.EqualValues(t, 1, r.Generation, "one generation for the whole fleet")
		require.Equal(t, leader, r.LeaderID)
		require.Equal(t, "range", *r.Protocol)
		require.Equal(t, "consumer", *r.ProtocolType)
		require.False(t, r.SkipAssignment)
		if r.MemberID == leader {
			leaderResp = r
		} else {
			require.Empty(t, r.Members, "followers do not get the member list")
		}
	}
	require.NotNil(t, leaderResp)
	require.Len(t, leaderResp.Members, 3)
	for _, m := range leaderResp.Members {
		var md kmsg.ConsumerMemberMetadata
		require.NoError(t, md.ReadFrom(m.ProtocolMetadata))
		require.Len(t, md.Topics, 1, "each member's own metadata")
	}

	// Followers wait for the leader's assignment.
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, r := range resps {
		if r.MemberID != leader {
			syncs = append(syncs, goSync(t, c, syncReq(testGroup, r.MemberID, 1, nil)))
		}
	}
	for _, r := range resps {
		if r.MemberID != leader {
			eventually(t, "followers are parked", func() bool { return parkedInSync(c, testGroup, r.MemberID) })
		}
	}
	for _, ch := range syncs {
		select {
		case r := <-ch:
			t.Fatalf("follower answered before the leader synced: %+v", r)
		default:
		}
	}
	require.Zero(t, st.saveCount(), "nothing persisted before the leader's sync")
	g, _ := c.Group(testGroup)
	require.Equal(t, StateCompletingRebalance, g.State)

	plan := map[string][]byte{}
	for _, r := range resps {
		plan[r.MemberID] = []byte("for " + r.MemberID)
	}
	lr := c.SyncGroup(ctxT(t), syncReq(testGroup, leader, 1, plan))
	require.Zero(t, lr.ErrorCode)
	require.Equal(t, "for "+leader, string(lr.MemberAssignment))
	require.Equal(t, "range", *lr.Protocol)
	for i, ch := range syncs {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode, "follower %d", i)
		require.True(t, strings.HasPrefix(string(r.MemberAssignment), "for "))
	}

	saved, ok := st.group(testGroup)
	require.True(t, ok, "SaveGroup was called")
	require.EqualValues(t, 1, saved.Generation)
	require.Equal(t, StateStable, saved.State)
	require.Equal(t, leader, saved.Leader)
	require.Len(t, saved.Members, 3)
	for _, m := range saved.Members {
		require.Equal(t, "for "+m.ID, string(m.Assignment))
	}

	d := c.DescribeGroup(testGroup)
	require.Equal(t, StateStable, d.State)
	require.Equal(t, "range", d.Protocol)
	require.Len(t, d.Members, 3)
	for _, m := range d.Members {
		require.Equal(t, "for "+m.MemberID, string(m.MemberAssignment))
		require.NotEmpty(t, m.ProtocolMetadata)
		require.Equal(t, "/127.0.0.1", m.ClientHost)
	}
}

func TestJoinErrors(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	formGroup(t, c, "existing", 2)

	tests := []struct {
		name   string
		spec   joinSpec
		mutate func(*kmsg.JoinGroupRequest)
		want   int16
	}{
		{"empty group id", joinSpec{}, func(r *kmsg.JoinGroupRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		{"session below minimum", joinSpec{session: 5 * time.Millisecond}, nil, kerr.InvalidSessionTimeout.Code},
		{"session above maximum", joinSpec{session: 2 * time.Minute}, nil, kerr.InvalidSessionTimeout.Code},
		{"unknown member of unknown group", joinSpec{group: "new", member: "ghost"}, nil, kerr.UnknownMemberID.Code},
		{"unknown member of existing group", joinSpec{group: "existing", member: "ghost"}, nil, kerr.UnknownMemberID.Code},
		{"no protocol type", joinSpec{group: "new"}, func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "" }, kerr.InconsistentGroupProtocol.Code},
		{"no protocols", joinSpec{group: "new"}, func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }, kerr.InconsistentGroupProtocol.Code},
		{"other protocol type", joinSpec{group: "existing", ptype: "connect"}, nil, kerr.InconsistentGroupProtocol.Code},
		{"no common protocol", joinSpec{group: "existing", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "sticky"}}}, nil, kerr.InconsistentGroupProtocol.Code},
		{"v4 needs a member id", joinSpec{group: "new4", version: 4}, nil, kerr.MemberIDRequired.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.spec.req()
			if tt.mutate != nil {
				tt.mutate(req)
			}
			got := c.JoinGroup(ctxT(t), req, ClientInfo{ClientID: "cl"})
			require.Equal(t, tt.want, got.ErrorCode, "got %v", kerr.ErrorForCode(got.ErrorCode))
			require.Equal(t, req.Version, got.Version)
			require.EqualValues(t, -1, got.Generation)
		})
	}
	require.NotContains(t, c.Groups(), "new", "failed joins leave no group behind")
}

func TestJoinV3WithoutMemberIDJoinsAtOnce(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	r := join(t, c, joinSpec{version: 3}, "old")
	require.Zero(t, r.ErrorCode)
	require.EqualValues(t, 1, r.Generation)
	require.Equal(t, r.MemberID, r.LeaderID)
	require.Equal(t, "range", *r.Protocol)
}

func TestJoinV0UsesSessionAsRebalanceTimeout(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	r := join(t, c, joinSpec{version: -1, session: 300 * time.Millisecond}, "v0")
	require.Zero(t, r.ErrorCode)
	g, _ := c.Group(testGroup)
	require.EqualValues(t, 300, g.Members[0].RebalanceTimeoutMs)
}

func TestProtocolVote(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	p := func(names ...string) []kmsg.JoinGroupRequestProtocol {
		var out []kmsg.JoinGroupRequestProtocol
		for _, n := range names {
			out = append(out, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t")})
		}
		return out
	}
	a := goJoin(t, c, joinSpec{version: 3, protocols: p("sticky", "range", "roundrobin")}, "a")
	b := goJoin(t, c, joinSpec{version: 3, protocols: p("roundrobin", "range")}, "b")
	d := goJoin(t, c, joinSpec{version: 3, protocols: p("roundrobin", "sticky", "range")}, "d")
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{a, b, d} {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode)
		// Candidates are range and roundrobin; roundrobin gets two votes.
		require.Equal(t, "roundrobin", *r.Protocol)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	// Long sessions, short rebalance timeout: the silent member is removed
	// by the join barrier, not by its session.
	var joins []<-chan *kmsg.JoinGroupResponse
	for i := range 2 {
		joins = append(joins, goJoin(t, c, joinSpec{version: 3, session: 10 * time.Second, rebalance: 150 * time.Millisecond}, fmt.Sprint("c", i)))
	}
	var ids []string
	var leader string
	for _, ch := range joins {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode)
		ids = append(ids, r.MemberID)
		leader = r.LeaderID
	}
	follower := ids[0]
	if follower == leader {
		follower = ids[1]
	}
	fs := goSync(t, c, syncReq(testGroup, follower, 1, nil))
	require.Zero(t, c.SyncGroup(ctxT(t), syncReq(testGroup, leader, 1, nil)).ErrorCode)
	require.Zero(t, recv(t, fs).ErrorCode)

	// The leader rejoins (as after a metadata change); the follower never
	// learns of it.
	start := time.Now()
	r := join(t, c, joinSpec{version: 3, member: leader, session: 10 * time.Second, rebalance: 150 * time.Millisecond}, "c0")
	require.Zero(t, r.ErrorCode)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the barrier waited for the follower")
	require.EqualValues(t, 2, r.Generation)
	require.Len(t, r.Members, 1)
	require.Equal(t, kerr.UnknownMemberID.Code, heartbeat(c, testGroup, follower, 1))
}

func TestRejoinWithSameMetadataWhileStableIsNoRebalance(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 2)
	f := ms[1]
	r := join(t, c, joinSpec{member: f.id}, f.client)
	require.Zero(t, r.ErrorCode)
	require.Equal(t, f.gen, r.Generation)
	g, _ := c.Group(testGroup)
	require.Equal(t, StateStable, g.State)
}

func TestMemberJoiningStableGroupTriggersRebalance(t *testing.T) {
	// What cooperative-sticky relies on: a new member makes the group
	// prepare a rebalance, members that keep heartbeating are told to
	// rejoin, and they can still commit meanwhile.
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 2)

	newcomer := goJoin(t, c, joinSpec{member: "", version: 3}, "newcomer")
	eventually(t, "the group prepares a rebalance", func() bool {
		g, _ := c.Group(testGroup)
		return g.State == StatePreparingRebalance
	})
	for _, m := range ms {
		require.Equal(t, kerr.RebalanceInProgress.Code, heartbeat(c, testGroup, m.id, m.gen))
		cr := c.OffsetCommit(ctxT(t), commitReq(testGroup, m.id, m.gen, "t1", 0, 5))
		require.Zero(t, cr.Topics[0].Partitions[0].ErrorCode, "commits are allowed while preparing")
	}
	var joins []<-chan *kmsg.JoinGroupResponse
	for _, m := range ms {
		joins = append(joins, goJoin(t, c, joinSpec{member: m.id}, m.client))
	}
	nr := recv(t, newcomer)
	require.Zero(t, nr.ErrorCode)
	require.EqualValues(t, 2, nr.Generation)
	for _, ch := range joins {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode)
		require.EqualValues(t, 2, r.Generation)
		require.Equal(t, ms[0].id, r.LeaderID, "the leader stays the leader")
	}
}
