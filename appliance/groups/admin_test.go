package groups

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestDescribeAndListGroups(t *testing.T) {
	c := newTestCoordinator(t, newFakeStore(), Snapshot{})
	formGroup(t, c, "b-stable", 1)
	require.Zero(t, commitCode(c.OffsetCommit(ctxT(t), commitReq("a-simple", "", -1, "t", 0, 1))))

	d := c.DescribeGroup("nobody")
	require.Zero(t, d.ErrorCode, "Kafka describes unknown groups as Dead")
	require.Equal(t, StateDead, d.State)

	names := func(states, types []string) []string {
		var out []string
		for _, g := range c.ListGroups(states, types) {
			require.Equal(t, "classic", g.GroupType)
			out = append(out, g.Group)
		}
		return out
	}
	tests := []struct {
		name   string
		states []string
		types  []string
		want   []string
	}{
		{"all", nil, nil, []string{"a-simple", "b-stable"}},
		{"stable", []string{"stable"}, nil, []string{"b-stable"}},
		{"empty", []string{"Empty"}, nil, []string{"a-simple"}},
		{"classic", nil, []string{"Classic"}, []string{"a-simple", "b-stable"}},
		{"consumer type", nil, []string{"consumer"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, names(tt.states, tt.types))
		})
	}
	require.Equal(t, []string{"a-simple", "b-stable"}, c.Groups())
	for _, g := range c.ListGroups(nil, nil) {
		if g.Group == "b-stable" {
			require.Equal(t, "consumer", g.ProtocolType)
		}
	}
}

func TestDeleteGroup(t *testing.T) {
	st := newFakeStore()
	c := newTestCoordinator(t, st, Snapshot{})
	formGroup(t, c, "busy", 1)
	require.Zero(t, commitCode(c.OffsetCommit(ctxT(t), commitReq("idle", "", -1, "t", 0, 1))))

	require.Equal(t, kerr.NonEmptyGroup.Code, c.DeleteGroup(ctxT(t), "busy"))
	require.Equal(t, kerr.GroupIDNotFound.Code, c.DeleteGroup(ctxT(t), "nobody"))

	st.setFail(ErrLoading)
	require.Equal(t, kerr.CoordinatorLoadInProgress.Code, c.DeleteGroup(ctxT(t), "idle"))
	require.Equal(t, StateEmpty, c.DescribeGroup("idle").State, "back to Empty after a failed delete")
	st.setFail(nil)

	require.Zero(t, c.DeleteGroup(ctxT(t), "idle"))
	require.Equal(t, StateDead, c.DescribeGroup("idle").State)
	require.EqualValues(t, -1, fetch(c, "idle", "t", 0).Topics[0].Partitions[0].Offset)
	require.Empty(t, st.snapshot().Offsets["idle"])
	require.Equal(t, kerr.GroupIDNotFound.Code, c.DeleteGroup(ctxT(t), "idle"))
}
