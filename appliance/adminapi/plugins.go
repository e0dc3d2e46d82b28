package adminapi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/plugins"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// PluginRuntime is what the plugin endpoints need from the node: the host
// that checks a module before it is stored, and each module's statistics.
type PluginRuntime struct {
	Host  *plugins.Host
	Stats func(sha256 string) ([]plugins.Stats, bool)
}

func (a *API) registerPlugins(mux *http.ServeMux) {
	mux.Handle("PUT /v1/plugins/{name}", a.auth(http.HandlerFunc(a.putPlugin)))
	mux.Handle("GET /v1/plugins", a.auth(http.HandlerFunc(a.listPlugins)))
	mux.Handle("GET /v1/plugins/{name}", a.auth(http.HandlerFunc(a.describePlugin)))
	mux.Handle("GET /v1/plugins/{name}/{version}/module", a.auth(http.HandlerFunc(a.pluginModule)))
	mux.Handle("DELETE /v1/plugins/{name}/{version}", a.auth(http.HandlerFunc(a.deletePlugin)))
}

// PluginVersionInfo is one version as the API reports it.
type PluginVersionInfo struct {
	Version    int      `json:"version"`
	SHA256     string   `json:"sha256"`
	Kinds      []string `json:"kinds"`
	ABI        string   `json:"abi"`
	Size       int      `json:"size"`
	UploadedAt string   `json:"uploaded_at"`
	Latest     bool     `json:"latest"`
	// UsedBy lists the topics (and attachment) that run this version.
	UsedBy []string `json:"used_by,omitempty"`
	// Stats are this node's figures for the version (one entry per
	// topic setting it is loaded with), when it has run here.
	Stats []PluginStats `json:"stats,omitempty"`
	// CompileMs and InstantiateMs are measured at upload on the node that
	// took it (PUT's answer only).
	CompileMs     float64 `json:"compile_ms,omitempty"`
	InstantiateMs float64 `json:"instantiate_ms,omitempty"`
}

// PluginStats are a loaded plugin's figures on one node.
type PluginStats struct {
	Calls     int64   `json:"calls"`
	Records   int64   `json:"records"`
	Failures  int64   `json:"failures"`
	Failed    bool    `json:"failed"`
	LastError string  `json:"last_error,omitempty"`
	MeanMs    float64 `json:"mean_call_ms"`
	MaxMs     float64 `json:"max_call_ms"`
}

// PluginInfo is a plugin with its versions, oldest first.
type PluginInfo struct {
	Name     string              `json:"name"`
	Versions []PluginVersionInfo `json:"versions"`
}

func (a *API) pluginInfo(st *meta.State, p *meta.Plugin, withStats bool) PluginInfo {
	out := PluginInfo{Name: p.Name}
	for _, v := range p.Versions {
		vi := PluginVersionInfo{Version: v.Version, SHA256: v.SHA256, Kinds: v.Kinds, Size: v.Size,
			ABI:        fmt.Sprintf("%d.%d", v.ABI>>16, v.ABI&0xffff),
			UploadedAt: time.UnixMilli(v.UploadedAtMs).UTC().Format(time.RFC3339),
			Latest:     v == p.Latest(), UsedBy: st.PluginUsers(p.Name, v.Version)}
		if withStats && a.Plugins.Stats != nil {
			if stats, ok := a.Plugins.Stats(v.SHA256); ok {
				for _, s := range stats {
					vi.Stats = append(vi.Stats, PluginStats{Calls: s.Calls, Records: s.Records, Failures: s.Failures, Failed: s.Failed,
						LastError: s.LastError, MeanMs: float64(s.MeanCall) / 1e6, MaxMs: float64(s.MaxCall) / 1e6})
				}
			}
		}
		out.Versions = append(out.Versions, vi)
	}
	return out
}

// putPlugin stores the request body as a new version of a plugin after
// the host checked it statically and by instantiating it.
func (a *API) putPlugin(w http.ResponseWriter, r *http.Request) {
	if !a.mayAlterCluster(w, r, "upload a plugin") {
		return
	}
	name := r.PathValue("name")
	if err := meta.ValidatePluginName(name); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if a.Plugins.Host == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("this node runs no plugin host"))
		return
	}
	module, err := io.ReadAll(io.LimitReader(r.Body, meta.MaxPluginModuleBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read the module: %w", err))
		return
	}
	if len(module) > meta.MaxPluginModuleBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the module is over %d MiB, the limit for a plugin", meta.MaxPluginModuleBytes>>20))
		return
	}
	info, err := a.Plugins.Host.Inspect(r.Context(), module, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("plugin %s refused: %w", name, err))
		return
	}
	cmd := meta.Command{PutPlugin: &meta.PutPlugin{Name: name, Kinds: info.Kinds, ABI: info.ABIVersion,
		UploadedAtMs: time.Now().UnixMilli(), Description: r.URL.Query().Get("description"), Module: module}}
	if err := a.Host.ProposeMeta(r.Context(), cmd); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	st := a.Host.Meta()
	p, ok := st.Plugins[name]
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("the plugin was stored but is not in the local metadata"))
		return
	}
	a.Logger.Info().Str("plugin", name).Int("version", p.Latest().Version).Strs("kinds", info.Kinds).Int("bytes", len(module)).Msg("plugin uploaded")
	vi := a.pluginInfo(st, p, false).Versions[len(p.Versions)-1]
	vi.CompileMs = float64(info.CompileTime) / 1e6
	vi.InstantiateMs = float64(info.InstantiateTime) / 1e6
	writeJSONStatus(w, http.StatusCreated, vi)
}

func (a *API) listPlugins(w http.ResponseWriter, r *http.Request) {
	st := a.Host.Meta()
	names := make([]string, 0, len(st.Plugins))
	for n := range st.Plugins {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]PluginInfo, 0, len(names))
	for _, n := range names {
		out = append(out, a.pluginInfo(st, st.Plugins[n], false))
	}
	writeJSON(w, out)
}

func (a *API) describePlugin(w http.ResponseWriter, r *http.Request) {
	st := a.Host.Meta()
	p, ok := st.Plugins[r.PathValue("name")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("plugin %q is not uploaded", r.PathValue("name")))
		return
	}
	writeJSON(w, a.pluginInfo(st, p, true))
}

// pluginModule serves a version's module (the SDK runs partitioners).
func (a *API) pluginModule(w http.ResponseWriter, r *http.Request) {
	st := a.Host.Meta()
	ref := r.PathValue("name")
	if v := r.PathValue("version"); v != "latest" {
		ref += "@" + v
	}
	_, pv, err := st.ResolvePlugin(ref)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	w.Header().Set("X-Eddy-Plugin-Version", strconv.Itoa(pv.Version))
	w.Header().Set("X-Eddy-Plugin-SHA256", pv.SHA256)
	w.Write(st.Modules[pv.SHA256])
}

func (a *API) deletePlugin(w http.ResponseWriter, r *http.Request) {
	if !a.mayAlterCluster(w, r, "delete a plugin") {
		return
	}
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("version %q: give the number of the version to delete", r.PathValue("version")))
		return
	}
	if err := a.Host.ProposeMeta(r.Context(), meta.Command{DeletePlugin: &meta.DeletePlugin{Name: r.PathValue("name"), Version: v}}); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// mayAlterCluster checks that the request's principal may ALTER the
// cluster, as changing the code that runs on every node requires, and
// answers 403 when not.
func (a *API) mayAlterCluster(w http.ResponseWriter, r *http.Request, what string) bool {
	if !a.Authorizer.Enabled() {
		return true
	}
	principal, ok := a.principal(r)
	if !ok {
		writeError(w, http.StatusForbidden, fmt.Errorf("an unauthenticated client may not %s: authenticate (admin token or client certificate) as a principal with ALTER on the cluster", what))
		return false
	}
	var addr net.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr = net.TCPAddrFromAddrPort(ap)
	}
	if a.Authorizer.Allowed(acl.Subject{Principal: principal, Addr: addr}, kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, meta.ACLClusterName) {
		return true
	}
	a.Logger.Info().Str("principal", principal).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("admin request refused by ACLs")
	writeError(w, http.StatusForbidden, fmt.Errorf("%s may not %s: that needs ALTER on the cluster (eddy acl add --allow %s --operation alter --cluster, or a super user)",
		principal, what, principal))
	return false
}

// statusOf maps a meta proposal's error to an HTTP status.
func statusOf(err error) int {
	switch meta.CodeOf(err) {
	case meta.ErrUnknownPlugin:
		return http.StatusNotFound
	case meta.ErrPluginInUse:
		return http.StatusConflict
	case meta.ErrInvalidCommand, meta.ErrInvalidConfigs:
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}
