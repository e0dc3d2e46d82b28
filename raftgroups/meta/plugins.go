package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Plugin is an uploaded Wasm plugin: every version kept, oldest first.
type Plugin struct {
	Name     string           `json:"name"`
	Versions []*PluginVersion `json:"versions"`
}

// PluginVersion is one uploaded module of a plugin. The module's bytes are
// in State.Modules under SHA256.
type PluginVersion struct {
	Version      int      `json:"version"`
	SHA256       string   `json:"sha256"`
	Kinds        []string `json:"kinds"`
	ABI          uint32   `json:"abi"`
	Size         int      `json:"size"`
	UploadedAtMs int64    `json:"uploaded_at_ms"`
	Description  string   `json:"description,omitempty"`
}

// Latest returns the newest version.
func (p *Plugin) Latest() *PluginVersion { return p.Versions[len(p.Versions)-1] }

// Version returns version v, or nil.
func (p *Plugin) Version(v int) *PluginVersion {
	for _, pv := range p.Versions {
		if pv.Version == v {
			return pv
		}
	}
	return nil
}

// PutPlugin stores a new version of a plugin (the host validated the
// module before proposing). Uploading the module the latest version
// already has changes nothing.
type PutPlugin struct {
	Name         string   `json:"name"`
	Kinds        []string `json:"kinds"`
	ABI          uint32   `json:"abi"`
	UploadedAtMs int64    `json:"uploaded_at_ms"`
	Description  string   `json:"description,omitempty"`
	Module       []byte   `json:"module"`
}

// DeletePlugin deletes one version of a plugin, refused while a topic uses
// it.
type DeletePlugin struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// MaxPluginModuleBytes bounds an uploaded module.
const MaxPluginModuleBytes = 16 << 20

// Topic configs that attach plugins, and the prefixes of the per-topic
// plugin config keys (eddy.validator.config.schema = ...).
const (
	ConfigValidator          = "eddy.validator"
	ConfigValidatorOnFailure = "eddy.validator.on_failure"
	ConfigPartitioner        = "eddy.partitioner"
	ConfigPartitionerEnforce = "eddy.partitioner.enforce"
	ConfigRetention          = "eddy.retention"

	ValidatorConfigPrefix   = "eddy.validator.config."
	PartitionerConfigPrefix = "eddy.partitioner.config."
	RetentionConfigPrefix   = "eddy.retention.config."
)

// Plugin kinds, as the module's exports declare them.
const (
	KindValidator   = "validator"
	KindPartitioner = "partitioner"
	KindRetention   = "retention"
)

// pluginAttachments maps each attaching config to the kind it needs.
var pluginAttachments = map[string]string{
	ConfigValidator:   KindValidator,
	ConfigPartitioner: KindPartitioner,
	ConfigRetention:   KindRetention,
}

// PluginConfigs returns the plugin config of an attachment: the topic's
// configs under prefix, without it.
func PluginConfigs(configs map[string]string, prefix string) map[string]string {
	var out map[string]string
	for k, v := range configs {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	return out
}

// ParsePluginRef splits "name" or "name@version"; version 0 means the
// latest.
func ParsePluginRef(ref string) (name string, version int, err error) {
	name, v, pinned := strings.Cut(ref, "@")
	if err := ValidatePluginName(name); err != nil {
		return "", 0, err
	}
	if pinned {
		version, err = strconv.Atoi(v)
		if err != nil || version < 1 {
			return "", 0, fmt.Errorf("%q: the version after @ must be a positive number", ref)
		}
	}
	return name, version, nil
}

// ValidatePluginName checks a plugin name: the same characters as topic
// names, at most 128.
func ValidatePluginName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("plugin name %q must be 1 to 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("plugin name %q has the character %q; use only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// ResolvePlugin finds the version a reference names (the latest when not
// pinned).
func (s *State) ResolvePlugin(ref string) (*Plugin, *PluginVersion, error) {
	name, version, err := ParsePluginRef(ref)
	if err != nil {
		return nil, nil, err
	}
	p, ok := s.Plugins[name]
	if !ok {
		return nil, nil, fmt.Errorf("plugin %q is not uploaded (eddy plugin upload %s FILE.wasm)", name, name)
	}
	if version == 0 {
		return p, p.Latest(), nil
	}
	pv := p.Version(version)
	if pv == nil {
		return nil, nil, fmt.Errorf("plugin %q has no version %d (it has %s)", name, version, p.versionList())
	}
	return p, pv, nil
}

func (p *Plugin) versionList() string {
	var vs []string
	for _, v := range p.Versions {
		vs = append(vs, strconv.Itoa(v.Version))
	}
	return strings.Join(vs, ", ")
}

// checkPluginRefs checks that every plugin a topic's configs attach exists
// and implements the kind the attachment needs.
func (s *State) checkPluginRefs(configs map[string]string) string {
	for key, kind := range pluginAttachments {
		ref := configs[key]
		if ref == "" {
			continue
		}
		_, pv, err := s.ResolvePlugin(ref)
		if err != nil {
			return fmt.Sprintf("%s: %v", key, err)
		}
		if !slices.Contains(pv.Kinds, kind) {
			return fmt.Sprintf("%s: plugin %s version %d is a %s, not a %s", key, ref, pv.Version, strings.Join(pv.Kinds, " and "), kind)
		}
	}
	return ""
}

// PluginUsers lists the topics whose attachments resolve to name's
// version v ("topic (config)").
func (s *State) PluginUsers(name string, v int) []string {
	var users []string
	p := s.Plugins[name]
	for _, t := range s.Topics {
		for key := range pluginAttachments {
			ref := t.Configs[key]
			if ref == "" {
				continue
			}
			rn, rv, err := ParsePluginRef(ref)
			if err != nil || rn != name {
				continue
			}
			if rv == v || (rv == 0 && p != nil && p.Latest().Version == v) {
				users = append(users, fmt.Sprintf("%s (%s)", t.Name, key))
			}
		}
	}
	slices.Sort(users)
	return users
}

func (s *State) putPlugin(c *PutPlugin) Result {
	if err := ValidatePluginName(c.Name); err != nil {
		return Result{Code: ErrInvalidCommand, Message: err.Error()}
	}
	if len(c.Module) == 0 || len(c.Module) > MaxPluginModuleBytes {
		return Result{Code: ErrInvalidCommand, Message: fmt.Sprintf("a plugin module must be 1 byte to %d MiB, got %d bytes", MaxPluginModuleBytes>>20, len(c.Module))}
	}
	if len(c.Kinds) == 0 {
		return Result{Code: ErrInvalidCommand, Message: "a plugin must implement at least one kind"}
	}
	sum := sha256.Sum256(c.Module)
	sha := hex.EncodeToString(sum[:])
	p := s.Plugins[c.Name]
	if p != nil && p.Latest().SHA256 == sha {
		return Result{Code: OK}
	}
	if p == nil {
		p = &Plugin{Name: c.Name}
		if s.Plugins == nil {
			s.Plugins = map[string]*Plugin{}
		}
		s.Plugins[c.Name] = p
	}
	next := 1
	if len(p.Versions) > 0 {
		next = p.Latest().Version + 1
	}
	p.Versions = append(p.Versions, &PluginVersion{Version: next, SHA256: sha, Kinds: slices.Clone(c.Kinds), ABI: c.ABI,
		Size: len(c.Module), UploadedAtMs: c.UploadedAtMs, Description: c.Description})
	if s.Modules == nil {
		s.Modules = map[string][]byte{}
	}
	if _, ok := s.Modules[sha]; !ok {
		s.Modules[sha] = slices.Clone(c.Module)
	}
	return Result{Code: OK}
}

func (s *State) deletePlugin(c *DeletePlugin) Result {
	p, ok := s.Plugins[c.Name]
	if !ok {
		return Result{Code: ErrUnknownPlugin, Message: fmt.Sprintf("plugin %q is not uploaded", c.Name)}
	}
	pv := p.Version(c.Version)
	if pv == nil {
		return Result{Code: ErrUnknownPlugin, Message: fmt.Sprintf("plugin %q has no version %d (it has %s)", c.Name, c.Version, p.versionList())}
	}
	if users := s.PluginUsers(c.Name, c.Version); len(users) > 0 {
		return Result{Code: ErrPluginInUse, Message: fmt.Sprintf("plugin %s version %d is used by %s; detach it or pin those topics to another version first",
			c.Name, c.Version, strings.Join(users, ", "))}
	}
	p.Versions = slices.DeleteFunc(p.Versions, func(v *PluginVersion) bool { return v.Version == c.Version })
	if len(p.Versions) == 0 {
		delete(s.Plugins, c.Name)
	}
	for _, other := range s.Plugins {
		for _, v := range other.Versions {
			if v.SHA256 == pv.SHA256 {
				return Result{Code: OK}
			}
		}
	}
	delete(s.Modules, pv.SHA256)
	return Result{Code: OK}
}

func (p *Plugin) clone() *Plugin {
	c := &Plugin{Name: p.Name, Versions: make([]*PluginVersion, len(p.Versions))}
	for i, v := range p.Versions {
		vv := *v
		vv.Kinds = slices.Clone(v.Kinds)
		c.Versions[i] = &vv
	}
	return c
}
