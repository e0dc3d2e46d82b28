package groups

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups, versions 0–5, one group at a time (the broker splits a
// request by coordinator).

// DescribeGroup describes one group as Kafka does: an unknown group is
// state "Dead" without an error; members carry protocol metadata and
// assignments only while the group is Stable, since in other states they
// belong to a generation being replaced. The result is the caller's; its
// byte slices are shared and must not be modified.
func (c *Coordinator) DescribeGroup(name string) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = name
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		out.ErrorCode = kerr.NotCoordinator.Code
		return out
	}
	g := c.groups[name]
	if g == nil || g.state == stateDead {
		out.State = StateDead
		return out
	}
	out.State = g.state.String()
	out.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		out.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if stable {
			dm.ProtocolMetadata = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		out.Members = append(out.Members, dm)
	}
	return out
}
