package groups

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups, versions 0–5. v4 filters by state, v5 by type; every group
// here is of type "classic".

// groupType is the KIP-848 type of every group this package coordinates.
const groupType = "classic"

// ListGroups lists the coordinator's groups, sorted by id, keeping those
// whose state (v4+) and type (v5+) are in the filters; an empty filter
// keeps all. Filters compare case-insensitively, as Kafka's do. A closed
// coordinator lists nothing.
func (c *Coordinator) ListGroups(statesFilter, typesFilter []string) []kmsg.ListGroupsResponseGroup {
	in := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	if !in(typesFilter, groupType) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	var out []kmsg.ListGroupsResponseGroup
	for name, g := range c.groups {
		if g.state == stateDead || !in(statesFilter, g.state.String()) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = name
		lg.ProtocolType = g.protocolType
		lg.GroupState = g.state.String()
		lg.GroupType = groupType
		out = append(out, lg)
	}
	slices.SortFunc(out, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return out
}
