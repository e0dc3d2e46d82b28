package plugins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/stretchr/testify/require"
)

func TestInspectAccepts(t *testing.T) {
	h, _ := newTestHost(t, nil)
	for _, tc := range []struct {
		module  string
		config  map[string]string
		kinds   []string
		imports []string
	}{
		{"accept_all", nil, []string{abi.KindValidator}, nil},
		{"reject_empty", map[string]string{"strict": "yes"}, []string{abi.KindValidator}, []string{"eddy.log"}},
		{"partition_keylen", nil, []string{abi.KindPartitioner}, []string{"wasi_snapshot_preview1.fd_write"}},
		{"retain_all", nil, []string{abi.KindRetention}, nil},
		// Exports every hook, answers StatusNoHook from two: kinds come
		// from what answers, not from exports.
		{"pdk_like", nil, []string{abi.KindValidator}, nil},
	} {
		t.Run(tc.module, func(t *testing.T) {
			wasm := testModule(t, tc.module)
			info, err := h.Inspect(context.Background(), wasm, tc.config)
			require.NoError(t, err)
			require.Equal(t, uint32(abi.Version), info.ABIVersion)
			require.Equal(t, tc.kinds, info.Kinds)
			require.Equal(t, tc.imports, info.Imports)
			require.Equal(t, len(wasm), info.Size)
			require.Positive(t, info.CompileTime)
			require.Positive(t, info.InstantiateTime)
		})
	}
}

func TestInspectRefuses(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.MaxModuleBytes = 1000 })
	accept := testModule(t, "accept_all")
	tooBig := append(slices.Clone(accept), make([]byte, 600)...)
	for _, tc := range []struct {
		name   string
		wasm   []byte
		config map[string]string
		want   string
	}{
		{"forbidden import", testModule(t, "forbidden_import"), nil,
			`module imports "env"."socket": a plugin may import only wasi_snapshot_preview1 and eddy`},
		{"ABI 2.0", testModule(t, "abi_v2"), nil,
			`eddy_abi_version says 2.0; this eddy runs ABI 1.0`},
		{"truncated", accept[:len(accept)/2], nil,
			`module is not valid WebAssembly: `},
		{"not wasm", []byte("#!/bin/sh\necho hello\n"), nil,
			`module is not valid WebAssembly: `},
		{"no hook", testModule(t, "no_hook"), nil,
			`module exports none of the hooks eddy_validate_batch, eddy_partition_batch, eddy_retain_records`},
		{"bad signature", testModule(t, "bad_signature"), nil,
			`export "eddy_validate_batch" has type (i32) -> (i32); the ABI wants (i32) -> (i64)`},
		{"memory over the limit", testModule(t, "big_memory"), nil,
			`module needs more memory than a plugin may have: `},
		{"too big", tooBig, nil,
			`module is 1103 bytes; the limit is 1000`},
		{"init fails", testModule(t, "reject_empty"), map[string]string{"fail": "please"},
			`eddy_init returned -7 (init failed): config key fail says to fail`},
		{"unknown WASI function", testModule(t, "unknown_wasi"), nil,
			`the module failed when started: instantiation: `},
		{"no handler", testModule(t, "no_handler"), nil,
			`every hook the module exports answers -3 (hook not present): it has no handler`},
		{"loops on an empty batch", testModule(t, "loop_on_empty"), nil,
			`the module failed when started: eddy_validate_batch on an empty batch: plugins: the call ran past its time budget`},
		{"config without an init handler", testModule(t, "pdk_like"), map[string]string{"a": "b"},
			`config was given but the module has no init handler (eddy_init answered -3), so it cannot read it`},
		{"config without eddy_init", accept, map[string]string{"a": "b"},
			`config was given but the module does not export eddy_init`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Inspect(context.Background(), tc.wasm, tc.config)
			t.Log(err)
			require.ErrorIs(t, err, ErrRefused)
			require.ErrorContains(t, err, tc.want)
			_, err = h.Load(context.Background(), tc.wasm, tc.config)
			require.ErrorIs(t, err, ErrRefused, "Load refuses what Inspect refuses")
		})
	}
}

func TestLoadSharesPlugins(t *testing.T) {
	h, _ := newTestHost(t, nil)
	ctx := context.Background()
	wasm := testModule(t, "reject_empty")
	a, err := h.Load(ctx, wasm, map[string]string{"x": "1"})
	require.NoError(t, err)
	b, err := h.Load(ctx, wasm, map[string]string{"x": "1"})
	require.NoError(t, err)
	c, err := h.Load(ctx, wasm, map[string]string{"x": "2"})
	require.NoError(t, err)
	require.Same(t, a, b, "same module and config")
	require.NotSame(t, a, c, "other config")
	require.Equal(t, a.ID(), c.ID(), "ID names the module")
	require.Len(t, a.ID(), 64)

	require.NoError(t, a.Close(ctx))
	_, err = b.Validate(ctx, records(1, 1))
	require.NoError(t, err, "one Close of two Loads leaves it open")
	require.NoError(t, b.Close(ctx))
	require.ErrorIs(t, b.Close(ctx), ErrClosed)
	_, err = b.Validate(ctx, records(1, 1))
	require.ErrorIs(t, err, ErrClosed)

	d, err := h.Load(ctx, wasm, map[string]string{"x": "1"})
	require.NoError(t, err)
	require.NotSame(t, a, d, "closed plugins are not handed out again")
	require.NoError(t, d.Close(ctx))
	require.NoError(t, c.Close(ctx))
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Empty(t, h.modules, "the compiled module is released with its last plugin")
	require.Empty(t, h.plugins)
}

func TestHostClose(t *testing.T) {
	h, _ := newTestHost(t, nil)
	ctx := context.Background()
	p := load(t, h, "accept_all", nil)
	require.NoError(t, h.Close(ctx))
	_, err := p.Validate(ctx, records(1, 1))
	require.ErrorIs(t, err, ErrClosed)
	_, err = h.Load(ctx, testModule(t, "accept_all"), nil)
	require.ErrorIs(t, err, ErrClosed)
}

func TestCacheDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for range 2 {
		h, err := NewHost(ctx, Config{CacheDir: dir})
		require.NoError(t, err)
		p, err := h.Load(ctx, testModule(t, "accept_all"), nil)
		require.NoError(t, err)
		_, err = p.Validate(ctx, records(3, 10))
		require.NoError(t, err)
		require.NoError(t, h.Close(ctx))
	}
	var files int
	require.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files++
		}
		return err
	}))
	require.Positive(t, files, "compiled code is kept on disk")
}

func TestLimits(t *testing.T) {
	d := Limits{}.withDefaults()
	require.Equal(t, uint64(64<<20), d.MemoryBytes)
	require.Equal(t, 100*time.Millisecond, d.CallTimeout)
	require.Equal(t, 1000, d.MaxBatchRecords)
	require.Equal(t, 1<<20, d.MaxOutputBytes)
	require.LessOrEqual(t, d.MaxInstances, 4)
	require.Equal(t, 10, d.LogLinesPerSec)
	require.Equal(t, 5, d.FailuresBeforeFailed)
	require.Equal(t, 16<<20, d.MaxModuleBytes)
	require.Equal(t, uint32(1024), d.memoryPages())

	require.ErrorContains(t, Limits{MemoryBytes: 3 << 30}.Validate(), "memory_bytes")
	require.ErrorContains(t, Limits{CallTimeout: -1}.Validate(), "call_timeout")
	require.ErrorContains(t, Limits{MaxInstances: -1}.Validate(), "max_instances")
	_, err := NewHost(context.Background(), Config{Limits: Limits{MaxBatchRecords: -2}})
	require.ErrorContains(t, err, "max_batch_records is -2")
	require.NoError(t, Limits{}.Validate())
}

func TestStatusErrorIsNoHook(t *testing.T) {
	err := error(&StatusError{Hook: abi.ExportValidate, Status: abi.StatusNoHook})
	require.True(t, errors.Is(err, ErrNoHook))
	require.False(t, errors.Is(&StatusError{Status: abi.StatusBadInput}, ErrNoHook))
}
