package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// Users over the admin API: how an operator holding the admin token
// creates the first SASL user of a secured cluster (or any user later)
// without a Kafka login. The Kafka APIs (AlterUserScramCredentials) do the
// same for Kafka clients. Changing users needs ALTER on the cluster when
// ACLs are on; the admin token always has it.

// UserRequest sets a user's password.
type UserRequest struct {
	Password string `json:"password"`
}

// UserInfo is a user as GET /v1/users lists it: never its credentials.
type UserInfo struct {
	Name       string           `json:"name"`
	Mechanisms map[string]int32 `json:"mechanisms"` // SCRAM mechanism → iterations
}

// userIterations is the cost of credentials made here, as `eddy user add`.
const userIterations = meta.MinScramIterations

func (a *API) registerUsers(mux *http.ServeMux) {
	mux.Handle("GET /v1/users", a.auth(http.HandlerFunc(a.listUsers)))
	mux.Handle("PUT /v1/users/{name}", a.auth(http.HandlerFunc(a.putUser)))
	mux.Handle("DELETE /v1/users/{name}", a.auth(http.HandlerFunc(a.deleteUser)))
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	if !a.mayAlterCluster(w, r, "list users") {
		return
	}
	st, err := a.Host.SyncMeta(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	out := []UserInfo{}
	for _, name := range st.UserNames() {
		u := UserInfo{Name: name, Mechanisms: map[string]int32{}}
		for mech, c := range st.Users[name].Scram {
			u.Mechanisms[mech] = c.Iterations
		}
		out = append(out, u)
	}
	writeJSON(w, out)
}

func (a *API) putUser(w http.ResponseWriter, r *http.Request) {
	if !a.mayAlterCluster(w, r, "set users") {
		return
	}
	name := r.PathValue("name")
	var req UserRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if err := meta.ValidateUserName(name); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Password == "" {
		writeError(w, http.StatusBadRequest, errors.New(`give "password"`))
		return
	}
	cmd, err := meta.SetPassword(name, []byte(req.Password), userIterations)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := a.Host.ProposeMeta(r.Context(), meta.Command{AlterCredentials: cmd}); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	p, _ := a.principal(r)
	a.Logger.Info().Str("user", name).Str("principal", p).Msg("user set through the admin API")
	writeJSON(w, map[string]any{"user": name, "mechanisms": meta.ScramMechanisms})
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	if !a.mayAlterCluster(w, r, "delete users") {
		return
	}
	name := r.PathValue("name")
	st, err := a.Host.SyncMeta(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	u := st.Users[name]
	if u == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("user %q does not exist", name))
		return
	}
	cmd := &meta.AlterCredentials{User: name}
	for mech := range u.Scram {
		cmd.Delete = append(cmd.Delete, mech)
	}
	if err := a.Host.ProposeMeta(r.Context(), meta.Command{AlterCredentials: cmd}); err != nil {
		code := http.StatusConflict
		if meta.CodeOf(err) == meta.ErrUnknownCredential {
			code = http.StatusNotFound
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, map[string]any{"deleted": name})
}
