package groups

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestCloseWakesParkedRequests(t *testing.T) {
	before := runtime.NumGoroutine()
	st := newFakeStore()
	cfg := testConfig()
	c := New(st, Snapshot{}, cfg)
	ms := formGroup(t, c, testGroup, 2)

	// A rebalance where one member rejoins and the other does not: the
	// rejoin parks at the barrier (the rebalance timeout is long).
	parkedJoin := goJoin(t, c, joinSpec{member: ms[0].id, rebalance: time.Minute}, ms[0].client)
	// A brand-new group whose first join parks for the initial delay...
	c2cfg := cfg
	c2cfg.InitialRebalanceDelay = time.Minute
	c2 := New(st, Snapshot{}, c2cfg)
	parkedInitial := goJoin(t, c2, joinSpec{version: 3}, "x")

	// ...and a follower parked in SyncGroup on a third group.
	a := goJoin(t, c, joinSpec{group: "s", version: 3}, "a")
	b := goJoin(t, c, joinSpec{group: "s", version: 3}, "b")
	ra, rb := recv(t, a), recv(t, b)
	follower := ra
	if ra.MemberID == ra.LeaderID {
		follower = rb
	}
	parkedSync := goSync(t, c, syncReq("s", follower.MemberID, follower.Generation, nil))

	eventually(t, "requests are parked", func() bool {
		g, _ := c2.Group(testGroup)
		return parkedInJoin(c, testGroup, ms[0].id) && parkedInSync(c, "s", follower.MemberID) &&
			g.State == StatePreparingRebalance
	})
	start := time.Now()
	c.Close()
	c2.Close()
	require.Equal(t, kerr.NotCoordinator.Code, recv(t, parkedJoin).ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, recv(t, parkedInitial).ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, recv(t, parkedSync).ErrorCode)
	require.Less(t, time.Since(start), time.Second, "Close answers parked requests promptly")

	// After Close, everything is NOT_COORDINATOR.
	require.Equal(t, kerr.NotCoordinator.Code, heartbeat(c, testGroup, ms[1].id, ms[1].gen))
	require.Equal(t, kerr.NotCoordinator.Code, join(t, c, joinSpec{}, "late").ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, commitCode(c.OffsetCommit(ctxT(t), commitReq("simple", "", -1, "t", 0, 1))))
	require.Equal(t, kerr.NotCoordinator.Code, c.OffsetFetch(testGroup, nil).ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, c.DeleteGroup(ctxT(t), testGroup))
	c.Close() // idempotent

	eventually(t, "goroutines settle", func() bool {
		return runtime.NumGoroutine() <= before
	})
}
