package plugins

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// instance is one instantiated guest. It serves one call at a time: the
// pool hands it to a single caller. After any error other than a
// *StatusError it must be closed, never reused.
type instance struct {
	mod       api.Module
	mem       api.Memory
	inputBuf  api.Function
	lastError api.Function
	hooks     map[string]api.Function
	memLimit  uint64
	maxOutput uint32
	version   uint32 // eddy_abi_version

	stack   [2]uint64
	scratch []byte // encoded input, reused across calls
}

// instantiate creates an instance of m: instantiation, _initialize if the
// module exports it, the ABI version check, and eddy_init with the config
// block if the module exports it. ctx bounds all of it.
func (h *Host) instantiate(ctx context.Context, m *module, cfg []byte, sink *logSink) (*instance, error) {
	ctx = withSink(ctx, sink)
	mc := wazero.NewModuleConfig().
		WithName("").         // anonymous: many instances of one module
		WithStartFunctions(). // a reactor: never _start
		WithStdout(sink.writer("stdout", LogInfo)).
		WithStderr(sink.writer("stderr", LogWarn)).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	// No WithFS, WithEnv, WithArgs: no preopens, no environment, no
	// arguments. Nanosleep stays wazero's no-op, so a guest cannot block
	// the calling goroutine in a host function.
	mod, err := h.rt.InstantiateModule(ctx, m.compiled, mc)
	if err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return nil, callError("instantiation", err)
		}
		return nil, fmt.Errorf("instantiation: %w", err) // e.g. an import wazero lacks
	}
	in := &instance{
		mod:       mod,
		mem:       mod.Memory(),
		inputBuf:  mod.ExportedFunction(abi.ExportInputBuffer),
		lastError: mod.ExportedFunction(abi.ExportLastError),
		hooks:     map[string]api.Function{},
		memLimit:  h.limits.MemoryBytes,
		maxOutput: uint32(h.limits.MaxOutputBytes),
	}
	for _, hk := range hooks {
		if fn := mod.ExportedFunction(hk.export); fn != nil {
			in.hooks[hk.export] = fn
		}
	}
	ok := false
	defer func() {
		if !ok {
			in.close()
		}
	}()
	if in.mem == nil {
		return nil, refused(`module does not export its memory as "memory"`)
	}
	if fn := mod.ExportedFunction(exportInitialize); fn != nil {
		if err := fn.CallWithStack(ctx, in.stack[:]); err != nil {
			return nil, callError(exportInitialize, err)
		}
	}
	if err := mod.ExportedFunction(abi.ExportVersion).CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, callError(abi.ExportVersion, err)
	}
	in.version = api.DecodeU32(in.stack[0])
	if err := checkVersion(in.version); err != nil {
		return nil, err
	}
	if fn := mod.ExportedFunction(abi.ExportInit); fn != nil && cfg != nil {
		if err := in.writeInput(ctx, cfg); err != nil {
			return nil, err
		}
		in.stack[0] = api.EncodeU32(uint32(len(cfg)))
		if err := fn.CallWithStack(ctx, in.stack[:]); err != nil {
			return nil, callError(abi.ExportInit, err)
		}
		switch status := api.DecodeI32(in.stack[0]); {
		case status == abi.StatusNoHook && len(cfg) <= 4:
			// The guest kit exports eddy_init always and answers
			// StatusNoHook without an init handler: fine without config.
		case status == abi.StatusNoHook:
			return nil, refused("config was given but the module has no init handler (%s answered %d), so it cannot read it", abi.ExportInit, status)
		case status < 0:
			return nil, in.statusError(ctx, abi.ExportInit, status)
		}
	}
	ok = true
	return in, nil
}

func (in *instance) close() {
	_ = in.mod.Close(context.Background())
}

// writeInput asks the guest for a buffer and copies input into it.
func (in *instance) writeInput(ctx context.Context, input []byte) error {
	in.stack[0] = api.EncodeU32(uint32(len(input)))
	if err := in.inputBuf.CallWithStack(ctx, in.stack[:]); err != nil {
		return callError(abi.ExportInputBuffer, err)
	}
	ptr := api.DecodeU32(in.stack[0])
	if ptr == 0 {
		return &StatusError{Hook: abi.ExportInputBuffer, Status: abi.StatusOutOfMemory,
			Message: fmt.Sprintf("no buffer for %d bytes of input", len(input))}
	}
	if !in.mem.Write(ptr, input) {
		return fmt.Errorf("%w: %s(%d) returned %#x, and %d bytes from there are outside the module's %d bytes of memory",
			ErrBadOutput, abi.ExportInputBuffer, len(input), ptr, len(input), in.mem.Size())
	}
	return nil
}

// run writes input, calls hook with len(input) and extra, and returns the
// output block. The block is a view of guest memory: valid until the next
// call on this instance.
func (in *instance) run(ctx context.Context, hook string, input []byte, extra ...uint64) ([]byte, error) {
	fn := in.hooks[hook]
	if err := in.writeInput(ctx, input); err != nil {
		return nil, err
	}
	in.stack[0] = api.EncodeU32(uint32(len(input)))
	copy(in.stack[1:], extra)
	if err := fn.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, callError(hook, err)
	}
	v := int64(in.stack[0])
	if v < 0 {
		if v < math.MinInt32 {
			return nil, fmt.Errorf("%w: %s returned %#x, which is neither a status nor a packed pointer", ErrBadOutput, hook, uint64(v))
		}
		return nil, in.statusError(ctx, hook, int32(v))
	}
	ptr, n, _ := abi.UnpackResult(v)
	if n > in.maxOutput {
		return nil, fmt.Errorf("%w: %s returned %d bytes of output; the limit is %d", ErrBadOutput, hook, n, in.maxOutput)
	}
	out, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: %s returned output at %#x+%d, outside the module's %d bytes of memory", ErrBadOutput, hook, ptr, n, in.mem.Size())
	}
	return out, nil
}

// statusError builds the *StatusError of a negative status, with the
// guest's eddy_last_error message. Only a failure of eddy_last_error
// itself is returned as a plain error (the instance is then discarded).
func (in *instance) statusError(ctx context.Context, hook string, status int32) error {
	e := &StatusError{Hook: hook, Status: status}
	if err := in.lastError.CallWithStack(ctx, in.stack[:]); err != nil {
		return callError(abi.ExportLastError, err)
	}
	v := int64(in.stack[0])
	if v <= 0 {
		return e
	}
	ptr, n, _ := abi.UnpackResult(v)
	msg, ok := in.mem.Read(ptr, min(n, maxErrorBytes))
	if !ok {
		e.Message = "(eddy_last_error pointed outside the module's memory)"
		return e
	}
	e.Message = strings.ToValidUTF8(string(msg), "\uFFFD")
	return e
}

// callError classifies an error from calling into the guest.
func callError(what string, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("%w: %s was stopped", ErrTimeout, what)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("%s was stopped: %w", what, context.Canceled)
		}
		return fmt.Errorf("%w: %s: the guest exited with code %d", ErrCrashed, what, exit.ExitCode())
	}
	msg, _, _ := strings.Cut(err.Error(), "\n") // drop wazero's stack trace
	return fmt.Errorf("%w: %s: %s", ErrCrashed, what, msg)
}

// probeKinds calls each exported hook once with an empty batch and
// returns the kinds whose hook answered anything but StatusNoHook. The
// guest kit exports every hook and answers StatusNoHook from those
// without a handler, so exports alone overstate what a plugin does. A
// hook that traps, overruns budget or answers an empty batch with a
// broken block is an error: a plugin must handle an empty batch.
func (in *instance) probeKinds(ctx context.Context, budget time.Duration) ([]string, error) {
	var kinds []string
	for _, hk := range hooks {
		if in.hooks[hk.export] == nil {
			continue
		}
		input := abi.AppendBatch(nil, nil)
		var extra []uint64
		var parse func([]byte) error
		switch hk.export {
		case abi.ExportValidate:
			parse = func(b []byte) error { _, err := abi.ParseVerdicts(b, 0, 0); return err }
		case abi.ExportPartition:
			extra = []uint64{1}
			parse = func(b []byte) error { _, err := abi.ParsePartitions(b, 0, 1); return err }
		case abi.ExportRetain:
			input = abi.AppendRetainInput(nil, time.Now().UnixMilli(), nil)
			parse = func(b []byte) error { _, err := abi.ParseExpired(b, 0); return err }
		}
		cctx, cancel := context.WithTimeout(ctx, budget)
		out, err := in.run(cctx, hk.export, input, extra...)
		cancel()
		var status *StatusError
		switch {
		case errors.As(err, &status):
			if status.Status == abi.StatusNoHook {
				continue
			}
		case err != nil:
			return nil, fmt.Errorf("%s on an empty batch: %w", hk.export, err)
		default:
			if err := parse(out); err != nil {
				return nil, fmt.Errorf("%w: %s on an empty batch: %v", ErrBadOutput, hk.export, err)
			}
		}
		kinds = append(kinds, hk.kind)
	}
	if len(kinds) == 0 {
		return nil, refused("every hook the module exports answers %d (%s): it has no handler", abi.StatusNoHook, abi.StatusText(abi.StatusNoHook))
	}
	return kinds, nil
}
