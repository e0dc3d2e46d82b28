package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/rs/zerolog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Host runs plugins: one wazero runtime with its memory limit and
// termination checks, the eddy and WASI host modules, and the loaded
// plugins. Its methods may be called concurrently.
type Host struct {
	rt     wazero.Runtime
	cache  wazero.CompilationCache // nil without CacheDir
	limits Limits
	log    zerolog.Logger

	mu      sync.Mutex
	closed  bool
	modules map[[32]byte]*module
	plugins map[pluginKey]*loading
}

// module is a compiled module shared by every plugin (and Inspect) that
// uses the same bytes.
type module struct {
	sum         [32]byte
	id          string
	compiled    wazero.CompiledModule
	kinds       []string
	imports     []string
	hasInit     bool
	size        int
	compileTime time.Duration
	refs        int // under Host.mu
}

// pluginKey names a plugin: its module and its config.
type pluginKey struct{ module, config [32]byte }

// loading is a plugin being loaded or loaded; ready closes when p or err
// is set.
type loading struct {
	ready chan struct{}
	p     *Plugin
	err   error
}

// Info describes a module that passed Inspect.
type Info struct {
	ABIVersion      uint32   // major << 16 | minor, from eddy_abi_version
	Kinds           []string // abi.KindValidator, abi.KindPartitioner, abi.KindRetention: the hooks that have a handler
	Imports         []string // "module.name", sorted
	Size            int      // bytes
	CompileTime     time.Duration
	InstantiateTime time.Duration // instantiation, _initialize and eddy_init
}

// NewHost starts a runtime. cfg.Limits is validated and its zero fields
// set to their defaults.
func NewHost(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	h := &Host{
		limits:  cfg.Limits.withDefaults(),
		log:     cfg.Logger,
		modules: map[[32]byte]*module{},
		plugins: map[pluginKey]*loading{},
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(!cfg.DisableCloseOnContextDone).
		WithMemoryLimitPages(h.limits.memoryPages())
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: compilation cache %s: %w", cfg.CacheDir, err)
		}
		h.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		_ = h.Close(ctx)
		return nil, fmt.Errorf("plugins: WASI: %w", err)
	}
	_, err := h.rt.NewHostModuleBuilder(importEddy).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostLog), eddyImports["log"].params, eddyImports["log"].results).
		WithParameterNames("level", "ptr", "len").
		Export("log").
		Instantiate(ctx)
	if err != nil {
		_ = h.Close(ctx)
		return nil, fmt.Errorf("plugins: eddy host module: %w", err)
	}
	return h, nil
}

// Close closes every plugin and the runtime. Calls in flight fail.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	var ps []*Plugin
	for _, l := range h.plugins {
		if l.p != nil {
			ps = append(ps, l.p)
		}
	}
	h.plugins = map[pluginKey]*loading{}
	h.mu.Unlock()
	for _, p := range ps {
		p.shutdown()
	}
	var err error
	if h.rt != nil {
		err = h.rt.Close(ctx)
	}
	if h.cache != nil {
		err = errors.Join(err, h.cache.Close(ctx))
	}
	return err
}

// Inspect decides whether a module may be uploaded, with the config it
// would run with. It checks the module statically (size; imports only
// from wasi_snapshot_preview1 and eddy; exports memory, eddy_abi_version,
// eddy_input_buffer, eddy_last_error and at least one hook, each with
// its ABI signature) and by creating one instance: _initialize, the ABI
// version (same major, minor up to this host's) and eddy_init with
// config (not called when config is nil). Every refusal wraps ErrRefused and says what is wrong in words
// meant for the uploader.
func (h *Host) Inspect(ctx context.Context, wasm []byte, config map[string]string) (Info, error) {
	m, err := h.acquireModule(ctx, wasm)
	if err != nil {
		return Info{}, err
	}
	defer h.releaseModule(m)
	info := Info{Kinds: slices.Clone(m.kinds), Imports: slices.Clone(m.imports), Size: m.size, CompileTime: m.compileTime}
	// Without settings (an upload: they come with each topic that
	// attaches the plugin) eddy_init is not called.
	var cfg []byte
	if config != nil {
		cfg = configBlock(config)
	}
	if err := checkConfig(m, config); err != nil {
		return info, err
	}
	sink := newLogSink(h.log.With().Str("plugin", m.id[:12]).Str("phase", "inspect").Logger(), h.limits.LogLinesPerSec)
	ictx, cancel := context.WithTimeout(ctx, h.limits.InitTimeout)
	defer cancel()
	start := time.Now()
	in, err := h.instantiate(ictx, m, cfg, sink)
	info.InstantiateTime = time.Since(start)
	if err != nil {
		return info, asRefusal(err)
	}
	defer in.close()
	info.ABIVersion = in.version
	kinds, err := in.probeKinds(withSink(ctx, sink), h.limits.CallTimeout)
	if err != nil {
		return info, asRefusal(err)
	}
	info.Kinds = kinds
	return info, nil
}

// Load compiles a module (or finds it compiled), checks it as Inspect
// does and returns a plugin whose instances run with config. The first
// instance is created now; the others as calls need them, up to
// MaxInstances. Loading the same module with the same config again
// returns the same *Plugin; every Load must be matched by one
// Plugin.Close.
func (h *Host) Load(ctx context.Context, wasm []byte, config map[string]string) (*Plugin, error) {
	cfg := configBlock(config)
	key := pluginKey{sha256.Sum256(wasm), sha256.Sum256(cfg)}
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		l, ok := h.plugins[key]
		if !ok {
			l = &loading{ready: make(chan struct{})}
			h.plugins[key] = l
			h.mu.Unlock()
			p, err := h.load(ctx, wasm, config, cfg, key)
			h.mu.Lock()
			l.p, l.err = p, err
			if err != nil && h.plugins[key] == l {
				delete(h.plugins, key)
			}
			h.mu.Unlock()
			close(l.ready)
			return p, err
		}
		h.mu.Unlock()
		select {
		case <-l.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err != nil {
			return nil, l.err
		}
		h.mu.Lock()
		if l.p.refs > 0 {
			l.p.refs++
			h.mu.Unlock()
			return l.p, nil
		}
		h.mu.Unlock() // closed meanwhile: load again
	}
}

func (h *Host) load(ctx context.Context, wasm []byte, config map[string]string, cfg []byte, key pluginKey) (*Plugin, error) {
	m, err := h.acquireModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	if err := checkConfig(m, config); err != nil {
		h.releaseModule(m)
		return nil, err
	}
	p := &Plugin{
		h:    h,
		mod:  m,
		key:  key,
		cfg:  cfg,
		log:  h.log.With().Str("plugin", m.id[:12]).Logger(),
		refs: 1,
	}
	p.sink = newLogSink(p.log, h.limits.LogLinesPerSec)
	p.pool = newPool(h.limits.MaxInstances, p.build)
	ictx, cancel := context.WithTimeout(ctx, h.limits.InitTimeout)
	defer cancel()
	start := time.Now()
	in, err := h.instantiate(ictx, m, cfg, p.sink)
	instantiateTime := time.Since(start)
	var kinds []string
	if err == nil {
		if kinds, err = in.probeKinds(withSink(ctx, p.sink), h.limits.CallTimeout); err != nil {
			in.close()
		}
	}
	if err != nil {
		h.releaseModule(m)
		return nil, asRefusal(err)
	}
	p.info = Info{
		ABIVersion:      in.version,
		Kinds:           kinds,
		Imports:         slices.Clone(m.imports),
		Size:            m.size,
		CompileTime:     m.compileTime,
		InstantiateTime: instantiateTime,
	}
	p.pool.reserve()
	p.pool.put(in)
	p.log.Info().Strs("kinds", m.kinds).Dur("compile", m.compileTime).Dur("instantiate", p.info.InstantiateTime).Msg("plugin loaded")
	return p, nil
}

// acquireModule compiles wasm, or takes a reference to it compiled, and
// checks its imports and exports.
func (h *Host) acquireModule(ctx context.Context, wasm []byte) (*module, error) {
	if len(wasm) > h.limits.MaxModuleBytes {
		return nil, refused("module is %d bytes; the limit is %d", len(wasm), h.limits.MaxModuleBytes)
	}
	sum := sha256.Sum256(wasm)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if m, ok := h.modules[sum]; ok {
		m.refs++
		h.mu.Unlock()
		return m, nil
	}
	h.mu.Unlock()

	start := time.Now()
	c, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, compileError(err)
	}
	kinds, imports, err := checkModule(c)
	if err != nil {
		_ = c.Close(ctx)
		return nil, err
	}
	_, hasInit := c.ExportedFunctions()[abi.ExportInit]
	m := &module{
		sum:         sum,
		id:          hex.EncodeToString(sum[:]),
		compiled:    c,
		kinds:       kinds,
		imports:     imports,
		hasInit:     hasInit,
		size:        len(wasm),
		compileTime: time.Since(start),
		refs:        1,
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		_ = c.Close(ctx)
		return nil, ErrClosed
	}
	if old, ok := h.modules[sum]; ok { // compiled concurrently
		old.refs++
		_ = c.Close(ctx)
		return old, nil
	}
	h.modules[sum] = m
	return m, nil
}

func (h *Host) releaseModule(m *module) {
	h.mu.Lock()
	m.refs--
	last := m.refs == 0 && h.modules[m.sum] == m
	if last {
		delete(h.modules, m.sum)
	}
	h.mu.Unlock()
	if last {
		_ = m.compiled.Close(context.Background())
	}
}

// configBlock encodes config with its keys sorted, so equal maps give
// equal blocks.
func configBlock(config map[string]string) []byte {
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return abi.AppendConfig(nil, keys, config)
}

// checkConfig refuses config for a module that cannot take it.
func checkConfig(m *module, config map[string]string) error {
	if len(config) > 0 && !m.hasInit {
		return refused("config was given but the module does not export %s, so it cannot read it", abi.ExportInit)
	}
	return nil
}

// asRefusal words an error from a module's first instance as a refusal.
func asRefusal(err error) error {
	if errors.Is(err, ErrRefused) {
		return err
	}
	return fmt.Errorf("%w: the module failed when started: %w", ErrRefused, err)
}
