package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PluginVersion is one uploaded version of a Wasm plugin.
type PluginVersion struct {
	Version    int      `json:"version"`
	SHA256     string   `json:"sha256"`
	Kinds      []string `json:"kinds"`
	ABI        string   `json:"abi"`
	Size       int      `json:"size"`
	UploadedAt string   `json:"uploaded_at"`
	Latest     bool     `json:"latest"`
	// UsedBy lists the topics (and attachment) running this version.
	UsedBy []string `json:"used_by,omitempty"`
	// Stats are the answering node's figures, one per topic setting the
	// version runs with there (describe only).
	Stats []PluginStats `json:"stats,omitempty"`
	// CompileMs and InstantiateMs: measured at upload (upload only).
	CompileMs     float64 `json:"compile_ms,omitempty"`
	InstantiateMs float64 `json:"instantiate_ms,omitempty"`
}

// PluginStats are a plugin's figures on one node.
type PluginStats struct {
	Calls     int64   `json:"calls"`
	Records   int64   `json:"records"`
	Failures  int64   `json:"failures"`
	Failed    bool    `json:"failed"`
	LastError string  `json:"last_error,omitempty"`
	MeanMs    float64 `json:"mean_call_ms"`
	MaxMs     float64 `json:"max_call_ms"`
}

// Plugin is a plugin and its versions, oldest first.
type Plugin struct {
	Name     string          `json:"name"`
	Versions []PluginVersion `json:"versions"`
}

// UploadPlugin stores module as the next version of plugin name. The node
// checks it first (imports, exports, ABI version, and by instantiating
// it) and refuses a bad module with a message saying what is wrong.
func (a *ClusterAdmin) UploadPlugin(ctx context.Context, name string, module []byte, description string) (PluginVersion, error) {
	path := "/v1/plugins/" + url.PathEscape(name)
	if description != "" {
		path += "?description=" + url.QueryEscape(description)
	}
	// The node compiles the module before answering: seconds for a
	// standard-Go module, more on a small device.
	up := *a
	if up.HTTP == nil {
		up.HTTP = &http.Client{Timeout: 5 * time.Minute}
	}
	data, err := up.doRaw(ctx, http.MethodPut, path, "application/wasm", module)
	if err != nil {
		return PluginVersion{}, err
	}
	var v PluginVersion
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("admin PUT %s: decode: %w", path, err)
	}
	return v, nil
}

// Plugins lists the uploaded plugins.
func (a *ClusterAdmin) Plugins(ctx context.Context) ([]Plugin, error) {
	var out []Plugin
	return out, a.do(ctx, http.MethodGet, "/v1/plugins", nil, &out)
}

// Plugin describes one plugin: its versions, the topics using them and
// the answering node's call statistics.
func (a *ClusterAdmin) Plugin(ctx context.Context, name string) (Plugin, error) {
	var out Plugin
	return out, a.do(ctx, http.MethodGet, "/v1/plugins/"+url.PathEscape(name), nil, &out)
}

// DeletePlugin deletes one version; the node refuses while a topic uses it.
func (a *ClusterAdmin) DeletePlugin(ctx context.Context, name string, version int) error {
	_, err := a.doRaw(ctx, http.MethodDelete, "/v1/plugins/"+url.PathEscape(name)+"/"+strconv.Itoa(version), "", nil)
	return err
}

// PluginModule fetches a version's module (0 = the latest).
func (a *ClusterAdmin) PluginModule(ctx context.Context, name string, version int) ([]byte, error) {
	v := "latest"
	if version > 0 {
		v = strconv.Itoa(version)
	}
	return a.doRaw(ctx, http.MethodGet, "/v1/plugins/"+url.PathEscape(name)+"/"+v+"/module", "", nil)
}
