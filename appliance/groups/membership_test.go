package groups

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHeartbeatAndSyncErrors(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 2, "i0", "i1")
	m := ms[1]

	hb := func(group, member string, gen int32, instance *string) int16 {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Version = 4
		r.Group, r.MemberID, r.Generation, r.InstanceID = group, member, gen, instance
		return c.Heartbeat(ctxT(t), r).ErrorCode
	}
	heartbeats := []struct {
		name     string
		group    string
		member   string
		gen      int32
		instance *string
		want     int16
	}{
		{"current", testGroup, m.id, m.gen, m.instance, 0},
		{"wrong generation", testGroup, m.id, m.gen + 1, nil, kerr.IllegalGeneration.Code},
		{"unknown member", testGroup, "ghost", m.gen, nil, kerr.UnknownMemberID.Code},
		{"unknown group", "nobody", m.id, m.gen, nil, kerr.UnknownMemberID.Code},
		{"no group id", "", m.id, m.gen, nil, kerr.InvalidGroupID.Code},
		{"instance owned by another member", testGroup, "ghost", m.gen, m.instance, kerr.FencedInstanceID.Code},
	}
	for _, tt := range heartbeats {
		t.Run("heartbeat/"+tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, hb(tt.group, tt.member, tt.gen, tt.instance))
		})
	}

	syncs := []struct {
		name   string
		mutate func(*kmsg.SyncGroupRequest)
		want   int16
	}{
		{"stable: current assignment", func(*kmsg.SyncGroupRequest) {}, 0},
		{"wrong generation", func(r *kmsg.SyncGroupRequest) { r.Generation++ }, kerr.IllegalGeneration.Code},
		{"unknown member", func(r *kmsg.SyncGroupRequest) { r.MemberID = "ghost" }, kerr.UnknownMemberID.Code},
		{"other protocol", func(r *kmsg.SyncGroupRequest) { r.Protocol = strPtr("sticky") }, kerr.InconsistentGroupProtocol.Code},
		{"fenced instance", func(r *kmsg.SyncGroupRequest) { r.MemberID, r.InstanceID = "ghost", strPtr("i1") }, kerr.FencedInstanceID.Code},
	}
	for _, tt := range syncs {
		t.Run("sync/"+tt.name, func(t *testing.T) {
			r := syncReq(testGroup, m.id, m.gen, nil)
			tt.mutate(r)
			got := c.SyncGroup(ctxT(t), r)
			require.Equal(t, tt.want, got.ErrorCode)
			if tt.want == 0 {
				require.Equal(t, m.assign, got.MemberAssignment)
			}
		})
	}

	// While preparing a rebalance, a sync of the old generation must rejoin.
	leave(t, c, testGroup, ms[0].id)
	require.Equal(t, kerr.RebalanceInProgress.Code, c.SyncGroup(ctxT(t), syncReq(testGroup, m.id, m.gen, nil)).ErrorCode)
	require.Equal(t, kerr.RebalanceInProgress.Code, hb(testGroup, m.id, m.gen, nil))
}

func TestSessionTimeoutRemovesSilentMember(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroupWith(t, c, joinSpec{group: testGroup, session: shortSession}, 3)
	silent := ms[2]
	alive := ms[:2]

	// The two live members heartbeat until told to rejoin.
	deadline := time.Now().Add(5 * time.Second)
	told := map[string]bool{}
	for len(told) < len(alive) {
		require.True(t, time.Now().Before(deadline), "no REBALANCE_IN_PROGRESS")
		for _, m := range alive {
			switch code := heartbeat(c, testGroup, m.id, m.gen); code {
			case 0:
			case kerr.RebalanceInProgress.Code:
				told[m.id] = true
			default:
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
			}
		}
		time.Sleep(shortSession / 10)
	}
	require.Equal(t, kerr.UnknownMemberID.Code, heartbeat(c, testGroup, silent.id, silent.gen), "the silent member is gone")

	var joins []<-chan *kmsg.JoinGroupResponse
	for _, m := range alive {
		joins = append(joins, goJoin(t, c, joinSpec{member: m.id, session: shortSession}, m.client))
	}
	for _, ch := range joins {
		r := recv(t, ch)
		require.Zero(t, r.ErrorCode)
		require.EqualValues(t, 2, r.Generation)
		if r.MemberID == r.LeaderID {
			require.Len(t, r.Members, 2)
		}
	}
}

func TestSessionTimeoutEmptiesGroup(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	formGroupWith(t, c, joinSpec{group: testGroup, session: shortSession}, 1)
	eventually(t, "the group is persisted empty", func() bool {
		g, ok := st.group(testGroup)
		return ok && g.State == StateEmpty && g.Generation == 2 && len(g.Members) == 0
	})
	g, _ := c.Group(testGroup)
	require.Equal(t, StateEmpty, g.State)
}

func TestLeaveGroupV0(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 2)
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 0
	r.Group, r.MemberID = testGroup, ms[1].id
	resp := c.LeaveGroup(ctxT(t), r)
	require.Equal(t, r.Version, resp.Version)
	require.Zero(t, resp.ErrorCode)
	require.Equal(t, kerr.RebalanceInProgress.Code, heartbeat(c, testGroup, ms[0].id, ms[0].gen))

	r.MemberID = "ghost"
	require.Equal(t, kerr.UnknownMemberID.Code, c.LeaveGroup(ctxT(t), r).ErrorCode)
	r.Group = "nobody"
	require.Equal(t, kerr.UnknownMemberID.Code, c.LeaveGroup(ctxT(t), r).ErrorCode)
}

func TestLeaveGroupV3Batch(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	ms := formGroup(t, c, testGroup, 3, "i0", "i1", "i2")
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 5
	r.Group = testGroup
	r.Members = []kmsg.LeaveGroupRequestMember{
		{MemberID: ms[0].id},                             // by member id
		{InstanceID: ms[1].instance},                     // by instance id alone
		{MemberID: "wrong", InstanceID: ms[2].instance},  // instance with another member id
		{MemberID: "ghost"},                              // unknown member
		{InstanceID: strPtr("nobody")},                   // unknown instance
		{MemberID: ms[2].id, InstanceID: ms[2].instance}, // both, matching
	}
	resp := c.LeaveGroup(ctxT(t), r)
	require.Zero(t, resp.ErrorCode)
	var codes []int16
	for i, m := range resp.Members {
		require.Equal(t, r.Members[i].MemberID, m.MemberID)
		require.Equal(t, r.Members[i].InstanceID, m.InstanceID)
		codes = append(codes, m.ErrorCode)
	}
	require.Equal(t, []int16{0, 0, kerr.FencedInstanceID.Code, kerr.UnknownMemberID.Code, kerr.UnknownMemberID.Code, 0}, codes)

	// Everyone left: the group is Empty in a new generation, persisted.
	eventually(t, "the empty group is persisted", func() bool {
		g, ok := st.group(testGroup)
		return ok && g.State == StateEmpty && g.Generation == 2
	})
}

func TestStaticMemberRejoinKeepsGeneration(t *testing.T) {
	for _, version := range []int16{5, 9} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			st := newFakeStore()
			c := newTestCoordinator(t, st, Snapshot{})
			ms := formGroup(t, c, testGroup, 2, "i0", "i1")
			for _, restarted := range ms { // the leader, then a follower
				saves := st.saveCount()
				r := join(t, c, joinSpec{version: version, instance: restarted.instance}, restarted.client)
				require.Zero(t, r.ErrorCode)
				require.NotEqual(t, restarted.id, r.MemberID, "a new member id")
				require.Equal(t, restarted.gen, r.Generation, "no rebalance")
				require.Equal(t, saves+1, st.saveCount(), "the takeover is persisted")
				saved, _ := st.group(testGroup)
				require.Contains(t, memberIDs(saved), r.MemberID)
				require.NotContains(t, memberIDs(saved), restarted.id)
				if restarted.leader {
					if version >= 9 {
						require.Equal(t, r.MemberID, r.LeaderID)
						require.True(t, r.SkipAssignment, "the leader keeps the current plan")
						require.Len(t, r.Members, 2)
					} else {
						require.Equal(t, restarted.id, r.LeaderID, "older leaders must not assign")
						require.Empty(t, r.Members)
					}
				}

				// The old process is fenced; the new one gets its assignment.
				hb := kmsg.NewPtrHeartbeatRequest()
				hb.Version = 4
				hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = testGroup, restarted.id, restarted.gen, restarted.instance
				require.Equal(t, kerr.FencedInstanceID.Code, c.Heartbeat(ctxT(t), hb).ErrorCode)
				require.Equal(t, kerr.UnknownMemberID.Code, heartbeat(c, testGroup, restarted.id, restarted.gen))
				sr := syncReq(testGroup, r.MemberID, r.Generation, nil)
				sr.InstanceID = restarted.instance
				sresp := c.SyncGroup(ctxT(t), sr)
				require.Zero(t, sresp.ErrorCode)
				require.Equal(t, restarted.assign, sresp.MemberAssignment)
				g, _ := c.Group(testGroup)
				require.Equal(t, StateStable, g.State)
			}
		})
	}
}

func memberIDs(g Group) []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestStaticTakeoverStoreFailureReverts(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	ms := formGroup(t, c, testGroup, 2, "i0", "i1")
	st.setFail(errors.New("not leader"))
	r := join(t, c, joinSpec{instance: ms[1].instance}, ms[1].client)
	require.Equal(t, kerr.NotCoordinator.Code, r.ErrorCode)
	st.setFail(nil)
	require.Zero(t, heartbeat(c, testGroup, ms[1].id, ms[1].gen), "the old member id is back")
}

func TestSyncStoreFailureRebalances(t *testing.T) {
	st := newFakeStore()
	st.setFail(errors.New("not leader"))
	c := newTestCoordinator(t, st, Snapshot{})
	a := goJoin(t, c, joinSpec{version: 3}, "a")
	b := goJoin(t, c, joinSpec{version: 3}, "b")
	ra, rb := recv(t, a), recv(t, b)
	leader, follower := ra, rb
	if rb.MemberID == rb.LeaderID {
		leader, follower = rb, ra
	}
	fs := goSync(t, c, syncReq(testGroup, follower.MemberID, follower.Generation, nil))
	eventually(t, "the follower is parked", func() bool { return parkedInSync(c, testGroup, follower.MemberID) })
	lr := c.SyncGroup(ctxT(t), syncReq(testGroup, leader.MemberID, leader.Generation, map[string][]byte{leader.MemberID: []byte("x")}))
	require.Equal(t, kerr.NotCoordinator.Code, lr.ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, recv(t, fs).ErrorCode)
	g, _ := c.Group(testGroup)
	require.Equal(t, StatePreparingRebalance, g.State)
	require.Zero(t, st.saveCount())

	// Once the Store works again, the members rejoin and complete.
	st.setFail(nil)
	var wg sync.WaitGroup
	for _, r := range []*kmsg.JoinGroupResponse{leader, follower} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jr := join(t, c, joinSpec{version: 3, member: r.MemberID}, "x")
			if jr.ErrorCode == 0 {
				c.SyncGroup(ctxT(t), syncReq(testGroup, jr.MemberID, jr.Generation, map[string][]byte{}))
			}
		}()
	}
	wg.Wait()
	eventually(t, "the group is stable", func() bool { g, _ := c.Group(testGroup); return g.State == StateStable })
}

func TestPendingMemberIDExpires(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	first := join(t, c, joinSpec{session: 50 * time.Millisecond}, "slow")
	require.Equal(t, kerr.MemberIDRequired.Code, first.ErrorCode)
	time.Sleep(150 * time.Millisecond)
	r := join(t, c, joinSpec{member: first.MemberID}, "slow")
	require.Equal(t, kerr.UnknownMemberID.Code, r.ErrorCode, "the reserved id lapsed")
}

func TestPendingMemberHoldsTheBarrier(t *testing.T) {
	// A member that got MEMBER_ID_REQUIRED is waited for, so the fleet's
	// second round of joins lands in one generation.
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 1)
	first := join(t, c, joinSpec{}, "late")
	require.Equal(t, kerr.MemberIDRequired.Code, first.ErrorCode)
	old := goJoin(t, c, joinSpec{member: ms[0].id}, ms[0].client) // the leader rejoins
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-old:
		t.Fatalf("barrier completed without the pending member: %+v", r)
	default:
	}
	late := join(t, c, joinSpec{member: first.MemberID}, "late")
	require.Zero(t, late.ErrorCode)
	require.EqualValues(t, 2, late.Generation)
	require.EqualValues(t, 2, recv(t, old).Generation)
}

func leaveByInstance(group, member, instance string) *kmsg.LeaveGroupRequest {
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 3
	r.Group = group
	r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member, InstanceID: strPtr(instance)}}
	return r
}
