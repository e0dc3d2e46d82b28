package groups

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func commitReq(group, member string, gen int32, topic string, part int32, offset int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group, r.MemberID, r.Generation = group, member, gen
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = part, offset
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	t.Partitions = []kmsg.OffsetCommitRequestTopicPartition{p}
	r.Topics = []kmsg.OffsetCommitRequestTopic{t}
	return r
}

func fetch(c *Coordinator, group, topic string, parts ...int32) kmsg.OffsetFetchResponseGroup {
	return c.OffsetFetch(group, []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: parts}})
}

func commitCode(r *kmsg.OffsetCommitResponse) int16 { return r.Topics[0].Partitions[0].ErrorCode }

func TestOffsetCommitFetchRoundTrip(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	ms := formGroup(t, c, testGroup, 2)

	req := commitReq(testGroup, ms[0].id, ms[0].gen, "orders", 0, 42)
	req.Topics[0].Partitions[0].LeaderEpoch = 7
	req.Topics[0].Partitions[0].Metadata = strPtr("hello")
	big := kmsg.NewOffsetCommitRequestTopicPartition()
	big.Partition, big.Offset, big.Metadata = 1, 9, strPtr(strings.Repeat("x", 4097))
	plain := kmsg.NewOffsetCommitRequestTopicPartition()
	plain.Partition, plain.Offset = 2, 11
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, big, plain)
	resp := c.OffsetCommit(ctxT(t), req)
	require.Equal(t, req.Version, resp.Version)
	codes := []int16{}
	for _, p := range resp.Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	require.Equal(t, []int16{0, kerr.OffsetMetadataTooLarge.Code, 0}, codes)

	got := fetch(c, testGroup, "orders", 0, 1, 2, 3)
	require.Zero(t, got.ErrorCode)
	ps := got.Topics[0].Partitions
	require.EqualValues(t, 42, ps[0].Offset)
	require.EqualValues(t, 7, ps[0].LeaderEpoch)
	require.Equal(t, "hello", *ps[0].Metadata)
	require.EqualValues(t, -1, ps[1].Offset, "too-large metadata was not committed")
	require.EqualValues(t, 11, ps[2].Offset)
	require.Equal(t, "", *ps[2].Metadata, "null metadata reads back empty, as in Kafka")
	require.EqualValues(t, -1, ps[3].Offset)
	require.EqualValues(t, -1, ps[3].LeaderEpoch)

	all := c.OffsetFetch(testGroup, nil)
	require.Len(t, all.Topics, 1)
	require.Len(t, all.Topics[0].Partitions, 2)

	require.Len(t, st.snapshot().Offsets[testGroup], 2, "persisted")
}

func TestOffsetCommitValidation(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	ms := formGroup(t, c, testGroup, 2)

	tests := []struct {
		name   string
		group  string
		member string
		gen    int32
		want   int16
	}{
		{"member of the generation", testGroup, ms[1].id, ms[1].gen, 0},
		{"stale generation", testGroup, ms[1].id, ms[1].gen - 1, kerr.IllegalGeneration.Code},
		{"unknown member", testGroup, "ghost", ms[1].gen, kerr.UnknownMemberID.Code},
		{"simple commit to a live group", testGroup, "", -1, kerr.UnknownMemberID.Code},
		{"simple commit to an unknown group", "simple", "", -1, 0},
		{"generation for an unknown group", "nobody", "m", 5, kerr.IllegalGeneration.Code},
		{"empty group id is allowed, as in Kafka", "", "", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := commitCode(c.OffsetCommit(ctxT(t), commitReq(tt.group, tt.member, tt.gen, "t1", 0, 1)))
			require.Equal(t, tt.want, got, "got %v", kerr.ErrorForCode(got))
		})
	}

	// The simple commit created an Empty group that serves its offsets and
	// takes further simple commits.
	d := c.DescribeGroup("simple")
	require.Equal(t, StateEmpty, d.State)
	require.Zero(t, commitCode(c.OffsetCommit(ctxT(t), commitReq("simple", "", -1, "t1", 1, 8))))
	require.EqualValues(t, 8, fetch(c, "simple", "t1", 1).Topics[0].Partitions[0].Offset)
}

func TestOffsetCommitDuringCompletingRebalance(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	a := goJoin(t, c, joinSpec{version: 3}, "a")
	b := goJoin(t, c, joinSpec{version: 3}, "b")
	ra, rb := recv(t, a), recv(t, b)
	require.Equal(t, ra.Generation, rb.Generation)
	got := commitCode(c.OffsetCommit(ctxT(t), commitReq(testGroup, ra.MemberID, ra.Generation, "t1", 0, 1)))
	require.Equal(t, kerr.RebalanceInProgress.Code, got)
}

func TestOffsetCommitStoreFailure(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	tests := []struct {
		name string
		err  error
		want int16
	}{
		{"leadership lost", errors.New("raft: not leader"), kerr.NotCoordinator.Code},
		{"timed out", context.DeadlineExceeded, kerr.RequestTimedOut.Code},
		{"loading", ErrLoading, kerr.CoordinatorLoadInProgress.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.setFail(tt.err)
			defer st.setFail(nil)
			got := commitCode(c.OffsetCommit(ctxT(t), commitReq("simple", "", -1, "t1", 0, 5)))
			require.Equal(t, tt.want, got)
			require.EqualValues(t, -1, fetch(c, "simple", "t1", 0).Topics[0].Partitions[0].Offset, "nothing visible")
			require.Empty(t, st.snapshot().Offsets["simple"])
		})
	}
	require.NotContains(t, c.Groups(), "simple", "a failed simple commit creates no group")
}

func TestOffsetCommitWaitsForTheStore(t *testing.T) {
	st := newFakeStore()
	st.setLatency(200 * time.Millisecond)
	c := newTestCoordinator(t, st, Snapshot{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got := commitCode(c.OffsetCommit(ctx, commitReq("simple", "", -1, "t1", 0, 5)))
	require.Equal(t, kerr.RequestTimedOut.Code, got)
	require.EqualValues(t, -1, fetch(c, "simple", "t1", 0).Topics[0].Partitions[0].Offset)
}

func TestOffsetCommitV0AndOldVersions(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	req := commitReq("old", "ignored", 99, "t1", 0, 3)
	req.Version = 0
	req.Topics[0].Partitions[0].LeaderEpoch = 12 // not on the wire before v6
	resp := c.OffsetCommit(ctxT(t), req)
	require.Zero(t, commitCode(resp), "v0 commits are group-less")
	p := fetch(c, "old", "t1", 0).Topics[0].Partitions[0]
	require.EqualValues(t, 3, p.Offset)
	require.EqualValues(t, -1, p.LeaderEpoch)
}

func TestOffsetDelete(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	ms := formGroup(t, c, testGroup, 1) // subscribed to t1
	for _, topic := range []string{"t1", "t2"} {
		require.Zero(t, commitCode(c.OffsetCommit(ctxT(t), commitReq(testGroup, ms[0].id, ms[0].gen, topic, 0, 1))))
	}
	del := func(group string, topics ...string) *kmsg.OffsetDeleteResponse {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		for _, tp := range topics {
			r.Topics = append(r.Topics, kmsg.OffsetDeleteRequestTopic{Topic: tp, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}})
		}
		return c.OffsetDelete(ctxT(t), r)
	}
	resp := del(testGroup, "t1", "t2")
	require.Zero(t, resp.ErrorCode)
	require.Equal(t, kerr.GroupSubscribedToTopic.Code, resp.Topics[0].Partitions[0].ErrorCode)
	require.Zero(t, resp.Topics[1].Partitions[0].ErrorCode)
	require.EqualValues(t, 1, fetch(c, testGroup, "t1", 0).Topics[0].Partitions[0].Offset)
	require.EqualValues(t, -1, fetch(c, testGroup, "t2", 0).Topics[0].Partitions[0].Offset)
	require.Len(t, st.snapshot().Offsets[testGroup], 1)

	require.Equal(t, kerr.GroupIDNotFound.Code, del("nobody", "t1").ErrorCode)
	require.Equal(t, kerr.InvalidGroupID.Code, del("", "t1").ErrorCode)

	// Once the group is empty, everything can go.
	leave(t, c, testGroup, ms[0].id)
	eventually(t, "the group is empty", func() bool { g, _ := c.Group(testGroup); return g.State == StateEmpty })
	resp = del(testGroup, "t1")
	require.Zero(t, resp.ErrorCode)
	require.Zero(t, resp.Topics[0].Partitions[0].ErrorCode)
	require.Empty(t, c.Offsets(testGroup))
}

func leave(t *testing.T, c *Coordinator, group, member string) {
	t.Helper()
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 0
	r.Group, r.MemberID = group, member
	require.Zero(t, c.LeaveGroup(ctxT(t), r).ErrorCode)
}
