package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/eddybroker/eddy/appliance/slots"
)

// System is the machine a node runs on, as the admin API reports and
// updates it.
type System interface {
	// Status is the running version and, on an appliance, its slots.
	Status() slots.Status
	// Update installs a unified kernel image into the slot not running
	// and reboots into it once; the new slot becomes the default only
	// when it has served for a while (appliance/slots). It returns
	// before the reboot, so the answer reaches the client.
	Update(ctx context.Context, uki io.Reader) (slots.Installed, error)
}

// ErrUpdatesUnavailable is returned by a System that takes no updates:
// not an appliance, updates disabled, or no boot loader interface.
var ErrUpdatesUnavailable = errors.New("updates unavailable")

func (a *API) registerSystem(mux *http.ServeMux) {
	mux.Handle("GET /v1/system", a.auth(http.HandlerFunc(a.systemStatus)))
	mux.Handle("POST /v1/system/update", a.auth(http.HandlerFunc(a.systemUpdate)))
}

func (a *API) systemStatus(w http.ResponseWriter, _ *http.Request) {
	if a.System == nil {
		writeError(w, http.StatusNotFound, errors.New("this node reports no system status"))
		return
	}
	writeJSON(w, a.System.Status())
}

// systemUpdate takes a unified kernel image as the request body (what
// `eddy image push` sends). Replacing the code a box boots is allowed
// only to an authenticated principal, whatever insecure says, and with
// ACLs on only to one with ALTER on the cluster.
func (a *API) systemUpdate(w http.ResponseWriter, r *http.Request) {
	principal, ok := a.principal(r)
	if !ok || principal == AnonymousPrincipal {
		writeError(w, http.StatusUnauthorized, errors.New("an update needs an authenticated admin: set node.admin_token in the device config and pass it (eddy image push --admin-token, or EDDY_ADMIN_TOKEN), or use a client certificate (auth.admin_tls)"))
		return
	}
	if !a.mayAlterCluster(w, r, "push a system update") {
		return
	}
	if a.System == nil {
		writeError(w, http.StatusNotImplemented, errors.New("this node is not an eddy appliance; updates are pushed to nodes booted from an eddy image"))
		return
	}
	if r.ContentLength > slots.MaxUKISize {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the update is %d bytes, over the %d MiB limit", r.ContentLength, slots.MaxUKISize>>20))
		return
	}
	got, err := a.System.Update(r.Context(), http.MaxBytesReader(w, r.Body, slots.MaxUKISize+1))
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrUpdatesUnavailable) {
			code = http.StatusNotImplemented
		}
		a.Logger.Warn().Err(err).Str("principal", principal).Msg("system update refused")
		writeError(w, code, err)
		return
	}
	a.Logger.Info().Str("principal", principal).Str("slot", got.Slot).Str("version", got.Version).Int64("bytes", got.Bytes).Msg("system update installed; rebooting into it once")
	writeJSONStatus(w, http.StatusAccepted, got)
}
