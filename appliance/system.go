package appliance

import (
	"context"
	"fmt"
	"io"

	"github.com/eddybroker/eddy/appliance/adminapi"
	"github.com/eddybroker/eddy/appliance/slots"
)

// processSystem is the system of a node run by `eddy serve`: a version,
// no slots, no updates.
type processSystem struct{ version string }

func (p processSystem) Status() slots.Status {
	return slots.Status{Version: p.version, Updates: "not an appliance (eddy serve); updates go to nodes booted from an eddy image"}
}

func (processSystem) Update(context.Context, io.Reader) (slots.Installed, error) {
	return slots.Installed{}, fmt.Errorf("%w: this node runs under eddy serve, not from an eddy image; replace its binary instead", adminapi.ErrUpdatesUnavailable)
}
