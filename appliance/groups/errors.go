package groups

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// membershipStoreCode is the answer to a JoinGroup or SyncGroup whose
// state could not be persisted. NOT_COORDINATOR makes every client find
// the coordinator again and rejoin; Java's SyncGroup handler treats most
// other codes (REQUEST_TIMED_OUT among them) as fatal.
func membershipStoreCode(error) int16 { return kerr.NotCoordinator.Code }

// storeCode is the answer to an offset or admin request whose change could
// not be persisted. All of these are retriable for the clients of those
// APIs.
func (c *Coordinator) storeCode(err error) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.storeCodeLocked(err)
}

func (c *Coordinator) storeCodeLocked(err error) int16 {
	switch {
	case c.closed, errors.Is(err, errClosed):
		return kerr.NotCoordinator.Code
	case errors.Is(err, ErrLoading):
		return kerr.CoordinatorLoadInProgress.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return kerr.NotCoordinator.Code
}
