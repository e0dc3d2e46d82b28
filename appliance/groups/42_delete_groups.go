package groups

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// DeleteGroups, versions 0–2, one group at a time.

// DeleteGroup deletes an Empty group with all its offsets and returns the
// Kafka error code: NON_EMPTY_GROUP while it has members,
// GROUP_ID_NOT_FOUND when unknown. The group is Dead while the Store
// deletes it (joins get COORDINATOR_NOT_AVAILABLE and retry) and is back
// to Empty if that fails.
func (c *Coordinator) DeleteGroup(ctx context.Context, name string) int16 {
	unlock, err := c.lockGroup(ctx, name)
	if err != nil {
		return c.storeCode(err)
	}
	defer unlock()
	c.mu.Lock()
	g := c.groups[name]
	switch {
	case c.closed:
		c.mu.Unlock()
		return kerr.NotCoordinator.Code
	case g == nil, g.state == stateDead:
		c.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	case g.state != stateEmpty:
		c.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	g.state = stateDead
	c.mu.Unlock()

	sctx, cancel := c.storeContext(ctx)
	err = c.store.DeleteGroup(sctx, name)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		g.state = stateEmpty
		return c.storeCodeLocked(err)
	}
	delete(c.groups, name)
	c.log.Info().Str("group", name).Msg("deleted group")
	return 0
}
