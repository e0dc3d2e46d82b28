package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/appliance/peers"
	"github.com/eddybroker/eddy/appliance/slots"
	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// API serves /v1.
type API struct {
	Host  *raftgroups.Host
	View  *peers.View
	Token string
	// Insecure serves requests without a token or client certificate
	// from any address, not only loopback (the node's insecure: true).
	Insecure bool
	Logger   zerolog.Logger
	Plugins  PluginRuntime
	// Authorizer checks plugin uploads and deletes (ALTER on the
	// cluster); nil or disabled allows them.
	Authorizer *acl.Authorizer
	// System reports the node's version and slots and takes updates;
	// nil serves neither.
	System System
}

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	var status func() slots.Status
	if a.System != nil {
		status = a.System.Status
	}
	mux.Handle("GET "+peers.ReplicasPath, a.auth(peers.Handler(a.Host, status)))
	mux.Handle("GET /v1/cluster/nodes", a.auth(http.HandlerFunc(a.listNodes)))
	mux.Handle("POST /v1/cluster/nodes", a.auth(http.HandlerFunc(a.addNode)))
	mux.Handle("POST /v1/cluster/rebalance", a.auth(http.HandlerFunc(a.rebalance)))
	mux.Handle("GET /v1/cluster/reassignments", a.auth(http.HandlerFunc(a.reassignments)))
	mux.Handle("POST /v1/topics/{topic}/reassign", a.auth(http.HandlerFunc(a.reassign)))
	a.registerPlugins(mux)
	a.registerUsers(mux)
	a.registerSystem(mux)
	// Go's profiler, for diagnosing a node in the field.
	mux.Handle("GET /debug/pprof/", a.auth(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", a.auth(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", a.auth(http.HandlerFunc(pprof.Trace)))
}

// Move is a partition's replica change, planned or in progress.
type Move struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []uint64 `json:"replicas"`
	Target    []uint64 `json:"target"`
	Learners  []uint64 `json:"learners,omitempty"`
}

func (a *API) rebalance(w http.ResponseWriter, r *http.Request) {
	st, err := a.Host.SyncMeta(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	var alive []uint64
	for _, id := range st.NodeIDs() {
		if a.View.Alive(id) {
			alive = append(alive, id)
		}
	}
	plan := meta.PlanRebalance(st, alive)
	moves := []Move{}
	for _, ra := range plan {
		if err := a.Host.ProposeMeta(r.Context(), meta.Command{Reassign: &ra}); err != nil {
			writeError(w, http.StatusConflict, fmt.Errorf("reassign %s/%d: %w", ra.Topic, ra.Partition, err))
			return
		}
		p := st.Topics[ra.Topic].Partitions[ra.Partition]
		moves = append(moves, Move{Topic: ra.Topic, Partition: ra.Partition, Replicas: p.Replica, Target: ra.Replicas})
	}
	if err := a.Host.ProposeMeta(r.Context(), meta.Command{BalanceLeaders: &meta.BalanceLeaders{}}); err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	a.Logger.Info().Int("moves", len(moves)).Uints64("nodes", alive).Msg("rebalance planned")
	writeJSON(w, moves)
}

func (a *API) reassignments(w http.ResponseWriter, r *http.Request) {
	st, err := a.Host.SyncMeta(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	moves := []Move{}
	for _, name := range st.TopicNames() {
		for _, p := range st.Topics[name].Partitions {
			if p.Target != nil || len(p.Learners) > 0 {
				moves = append(moves, Move{Topic: name, Partition: p.Index, Replicas: p.Replica, Target: p.Target, Learners: p.Learners})
			}
		}
	}
	writeJSON(w, moves)
}

// ReassignRequest moves partitions of one topic to new replica sets.
type ReassignRequest struct {
	// Partitions maps a partition index to its new replicas, the first
	// being the preferred leader.
	Partitions map[int32][]uint64 `json:"partitions"`
}

func (a *API) reassign(w http.ResponseWriter, r *http.Request) {
	var req ReassignRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	topic := r.PathValue("topic")
	if len(req.Partitions) == 0 {
		writeError(w, http.StatusBadRequest, errors.New(`give "partitions": {"<index>": [node ids]}`))
		return
	}
	for idx, replicas := range req.Partitions {
		cmd := meta.Command{Reassign: &meta.Reassign{Topic: topic, Partition: idx, Replicas: replicas}}
		if err := a.Host.ProposeMeta(r.Context(), cmd); err != nil {
			code := http.StatusConflict
			if meta.CodeOf(err) == meta.ErrUnknownTopic {
				code = http.StatusNotFound
			}
			writeError(w, code, fmt.Errorf("partition %d: %w", idx, err))
			return
		}
	}
	writeJSON(w, map[string]any{"topic": topic, "reassigning": len(req.Partitions)})
}

// NodeInfo is one node as `eddy cluster nodes` shows it.
type NodeInfo struct {
	meta.Node
	State      string `json:"state"` // alive or down
	Controller bool   `json:"controller"`
	MetaLeader bool   `json:"meta_leader"`
	Replicas   int    `json:"replicas"`
	Leaders    int    `json:"leaders"`
	// System is the node's version and boot slots, as it last reported
	// them.
	System *slots.Status `json:"system,omitempty"`
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
		info := NodeInfo{Node: n, State: state, Controller: controller, MetaLeader: id == metaLeader,
			Replicas: replicas[id], Leaders: leaders[id]}
		if sys, ok := a.View.System(id); ok {
			info.System = &sys
		}
		out = append(out, info)
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

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
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
