package adminapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/appliance/peers"
	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// API serves /v1.
type API struct {
	Host   *raftgroups.Host
	View   *peers.View
	Token  string
	Logger zerolog.Logger
}

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("GET "+peers.ReplicasPath, a.auth(peers.Handler(a.Host)))
	mux.Handle("GET /v1/cluster/nodes", a.auth(http.HandlerFunc(a.listNodes)))
	mux.Handle("POST /v1/cluster/nodes", a.auth(http.HandlerFunc(a.addNode)))
}

// auth checks the bearer token when the node has one.
func (a *API) auth(h http.Handler) http.Handler {
	if a.Token == "" {
		return h
	}
	want := []byte("Bearer " + a.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong admin token (Authorization: Bearer <token>)"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// NodeInfo is one node as `eddy cluster nodes` shows it.
type NodeInfo struct {
	meta.Node
	State      string `json:"state"` // alive or down
	Controller bool   `json:"controller"`
	MetaLeader bool   `json:"meta_leader"`
	Replicas   int    `json:"replicas"`
	Leaders    int    `json:"leaders"`
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request) {
	st, err := a.Host.SyncMeta(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	voting, _, err := a.Host.MetaMembers(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	metaLeader, _, _ := a.Host.Leader(meta.MetaShardID)
	replicas, leaders := a.View.Counts()
	var out []NodeInfo
	for _, id := range st.NodeIDs() {
		n := *st.Nodes[id]
		n.CACert = ""
		state := "down"
		if a.View.Alive(id) {
			state = "alive"
		}
		_, controller := voting[id]
		out = append(out, NodeInfo{Node: n, State: state, Controller: controller, MetaLeader: id == metaLeader,
			Replicas: replicas[id], Leaders: leaders[id]})
	}
	writeJSON(w, out)
}

// AddNodeRequest asks to add a node to the cluster.
type AddNodeRequest struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

func (a *API) addNode(w http.ResponseWriter, r *http.Request) {
	var req AddNodeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if req.ID == 0 || req.RaftAddr == "" {
		writeError(w, http.StatusBadRequest, errors.New(`give "id" (>= 1) and "raft_addr" (host:port)`))
		return
	}
	if err := a.Host.AddNode(r.Context(), req.ID, req.RaftAddr); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, map[string]any{"added": req.ID, "raft_addr": req.RaftAddr})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ErrorBody is the JSON of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(ErrorBody{Error: err.Error()})
}
