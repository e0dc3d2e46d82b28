package groups

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestFailoverKeepsGenerationAndOffsets(t *testing.T) {
	st := newFakeStore()
	old := New(st, Snapshot{}, testConfig())
	ms := formGroup(t, old, testGroup, 3, "static0")
	for i, m := range ms {
		require.Zero(t, commitCode(old.OffsetCommit(ctxT(t), commitReq(testGroup, m.id, m.gen, "t1", int32(i), int64(100+i)))))
	}
	require.Zero(t, commitCode(old.OffsetCommit(ctxT(t), commitReq("simple", "", -1, "t2", 0, 7))))
	old.Close()

	// The snapshot must survive the Store's encoding.
	raw, err := json.Marshal(st.snapshot())
	require.NoError(t, err)
	var snap Snapshot
	require.NoError(t, json.Unmarshal(raw, &snap))

	saves := st.saveCount()
	c := newTestCoordinator(t, st, snap)
	for _, m := range ms {
		require.Zero(t, heartbeat(c, testGroup, m.id, m.gen), "member %s carries on", m.id)
	}
	for i, m := range ms {
		require.Zero(t, commitCode(c.OffsetCommit(ctxT(t), commitReq(testGroup, m.id, m.gen, "t1", int32(i), int64(200+i)))))
	}
	for i := range ms {
		p := fetch(c, testGroup, "t1", int32(i)).Topics[0].Partitions[0]
		require.EqualValues(t, 200+i, p.Offset)
	}
	require.EqualValues(t, 7, fetch(c, "simple", "t2", 0).Topics[0].Partitions[0].Offset)

	d := c.DescribeGroup(testGroup)
	require.Equal(t, StateStable, d.State)
	require.Len(t, d.Members, 3)
	for _, dm := range d.Members {
		require.Equal(t, "assign-"+dm.MemberID, string(dm.MemberAssignment))
	}
	// A follower that lost its SyncGroup answer gets it again.
	f := ms[1]
	sr := c.SyncGroup(ctxT(t), syncReq(testGroup, f.id, f.gen, nil))
	require.Zero(t, sr.ErrorCode)
	require.Equal(t, f.assign, sr.MemberAssignment)
	require.Equal(t, saves, st.saveCount(), "no rebalance, nothing to persist")

	// The static member is still known by its instance id.
	require.Equal(t, kerr.FencedInstanceID.Code, c.LeaveGroup(ctxT(t), leaveByInstance(testGroup, "other", "static0")).Members[0].ErrorCode)
	g, _ := c.Group(testGroup)
	require.Equal(t, StateStable, g.State)
	require.EqualValues(t, ms[0].gen, g.Generation)
}

func TestFailoverSessionsRestart(t *testing.T) {
	// Members that do not come back after a failover expire on the new
	// coordinator like on the old one.
	st := newFakeStore()
	old := New(st, Snapshot{}, testConfig())
	formGroupWith(t, old, joinSpec{group: testGroup, session: shortSession}, 1)
	old.Close()
	c := newTestCoordinator(t, st, st.snapshot())
	eventually(t, "the silent member expires", func() bool {
		g, _ := c.Group(testGroup)
		return g.State == StateEmpty
	})
}
