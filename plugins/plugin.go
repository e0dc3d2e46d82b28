package plugins

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/rs/zerolog"
)

// Plugin is a loaded module with its config and its pool of warm
// instances. Its methods may be called concurrently; up to MaxInstances
// calls run at once and the rest wait for an instance (or their ctx).
// Slices passed in are only read during the call; slices returned belong
// to the caller.
type Plugin struct {
	h    *Host
	mod  *module
	key  pluginKey
	cfg  []byte // config block for eddy_init
	info Info
	log  zerolog.Logger
	sink *logSink
	pool *pool
	refs int // Load references, under Host.mu

	mu          sync.Mutex
	closed      bool
	refills     sync.WaitGroup
	calls       int64
	records     int64
	failures    int64
	statusErrs  int64
	consecutive int
	failed      bool
	lastErr     error
	total, max  time.Duration
}

// Stats are a plugin's counters since Load.
type Stats struct {
	Calls               int64 // calls into the guest; a batch over MaxBatchRecords takes several
	Records             int64 // records passed in those calls
	Failures            int64 // traps, exits, timeouts, ABI violations, failed instance creations
	StatusErrors        int64 // negative statuses (the plugin said no; not failures)
	ConsecutiveFailures int
	Failed              bool // ConsecutiveFailures reached FailuresBeforeFailed; calls return ErrFailed
	LastError           string
	MeanCall, MaxCall   time.Duration
	Instances           int // live instances (idle, busy or being built)
}

// ID is the sha256 of the module, in hex. Two plugins of one module with
// different config share it.
func (p *Plugin) ID() string { return p.mod.id }

// Info is what Inspect said about the module, measured at Load.
func (p *Plugin) Info() Info { return p.info }

// Validate runs eddy_validate_batch over records, MaxBatchRecords at a
// time, and returns one verdict per record. Reasons are cut to 1 KiB.
func (p *Plugin) Validate(ctx context.Context, records []abi.Record) ([]abi.Verdict, error) {
	if err := p.implements(abi.ExportValidate); err != nil {
		return nil, err
	}
	var out []abi.Verdict
	for chunk := range p.chunks(records) {
		err := p.call(ctx, abi.ExportValidate, len(chunk),
			func(dst []byte) []byte { return abi.AppendBatch(dst, chunk) }, nil,
			func(block []byte) error {
				vs, err := abi.ParseVerdicts(block, len(chunk), maxReasonBytes)
				out = gather(out, vs, len(records))
				return err
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Partition runs eddy_partition_batch over records and returns one
// partition in [0, partitions) per record.
func (p *Plugin) Partition(ctx context.Context, records []abi.Record, partitions int32) ([]int32, error) {
	if err := p.implements(abi.ExportPartition); err != nil {
		return nil, err
	}
	if partitions <= 0 {
		return nil, p.wrap(abi.ExportPartition, fmt.Errorf("%d partitions: need at least one", partitions))
	}
	var out []int32
	extra := []uint64{uint64(uint32(partitions))}
	for chunk := range p.chunks(records) {
		err := p.call(ctx, abi.ExportPartition, len(chunk),
			func(dst []byte) []byte { return abi.AppendBatch(dst, chunk) }, extra,
			func(block []byte) error {
				ps, err := abi.ParsePartitions(block, len(chunk), partitions)
				out = gather(out, ps, len(records))
				return err
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RetainRecords runs eddy_retain_records over records with the time now
// (Unix ms) and returns, per record, whether it has expired and may be
// deleted. Each record's OffsetDelta is passed as given, also when the
// batch is split.
func (p *Plugin) RetainRecords(ctx context.Context, nowMs int64, records []abi.Record) ([]bool, error) {
	if err := p.implements(abi.ExportRetain); err != nil {
		return nil, err
	}
	var out []bool
	for chunk := range p.chunks(records) {
		err := p.call(ctx, abi.ExportRetain, len(chunk),
			func(dst []byte) []byte { return abi.AppendRetainInput(dst, nowMs, chunk) }, nil,
			func(block []byte) error {
				es, err := abi.ParseExpired(block, len(chunk))
				out = gather(out, es, len(records))
				return err
			})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	live, _ := p.pool.counts()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Calls:               p.calls,
		Records:             p.records,
		Failures:            p.failures,
		StatusErrors:        p.statusErrs,
		ConsecutiveFailures: p.consecutive,
		Failed:              p.failed,
		MaxCall:             p.max,
		Instances:           live,
	}
	if p.lastErr != nil {
		s.LastError = p.lastErr.Error()
	}
	if p.calls > 0 {
		s.MeanCall = p.total / time.Duration(p.calls)
	}
	return s
}

// Reset clears a failed plugin (an operator's "try again"): calls go to
// the guest again and the consecutive count starts from zero.
func (p *Plugin) Reset() {
	p.mu.Lock()
	p.failed, p.consecutive = false, 0
	p.mu.Unlock()
}

// Close releases this Load's reference. The last one closes the idle
// instances (busy ones close when their call ends) and waits for
// instances being built in the background.
func (p *Plugin) Close(ctx context.Context) error {
	h := p.h
	h.mu.Lock()
	if p.refs == 0 {
		h.mu.Unlock()
		return ErrClosed
	}
	p.refs--
	last := p.refs == 0
	if last {
		if l, ok := h.plugins[p.key]; ok && l.p == p {
			delete(h.plugins, p.key)
		}
	}
	h.mu.Unlock()
	if last {
		p.shutdown()
		h.releaseModule(p.mod)
	}
	return nil
}

func (p *Plugin) shutdown() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.pool.close()
	p.refills.Wait()
}

func (p *Plugin) short() string { return p.mod.id[:12] }

func (p *Plugin) implements(hook string) error {
	if slices.Contains(p.info.Kinds, kindOf(hook)) {
		return nil
	}
	if slices.Contains(p.mod.kinds, kindOf(hook)) {
		return p.wrap(hook, fmt.Errorf("%w: its %s has no handler, so it is not a %s", ErrNoHook, hook, kindOf(hook)))
	}
	return p.wrap(hook, fmt.Errorf("%w: it does not export %s, so it is not a %s", ErrNoHook, hook, kindOf(hook)))
}

// chunks splits records into batches of at most MaxBatchRecords. No
// records make no batch.
func (p *Plugin) chunks(records []abi.Record) func(func([]abi.Record) bool) {
	size := p.h.limits.MaxBatchRecords
	return func(yield func([]abi.Record) bool) {
		for len(records) > 0 {
			n := min(size, len(records))
			if !yield(records[:n:n]) {
				return
			}
			records = records[n:]
		}
	}
}

// gather adds one chunk's parsed results to out, for n records in all: a
// single chunk's slice is returned as is rather than copied.
func gather[T any](out, part []T, n int) []T {
	if out == nil && len(part) == n {
		return part
	}
	if out == nil {
		out = make([]T, 0, n)
	}
	return append(out, part...)
}

// usable returns ErrFailed (with the last failure) or ErrClosed.
func (p *Plugin) usable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.failed:
		return fmt.Errorf("%w; last failure: %w", ErrFailed, p.lastErr)
	}
	return nil
}

// wrap names the operation and the plugin: "validate with plugin
// 0123456789ab: ...".
func (p *Plugin) wrap(hook string, err error) error {
	op := hook
	switch hook {
	case abi.ExportValidate:
		op = "validate"
	case abi.ExportPartition:
		op = "partition"
	case abi.ExportRetain:
		op = "retain"
	}
	return fmt.Errorf("%s with plugin %s: %w", op, p.short(), err)
}

// call makes one guest call: take an instance, encode the input into its
// scratch buffer, run the hook under CallTimeout, parse the output while
// the instance is still ours (parse must copy what it keeps), then give
// the instance back or throw it away.
func (p *Plugin) call(ctx context.Context, hook string, n int, encode func([]byte) []byte, extra []uint64, parse func([]byte) error) error {
	if err := p.usable(); err != nil {
		return p.wrap(hook, err)
	}
	if err := ctx.Err(); err != nil {
		return p.wrap(hook, err)
	}
	start := time.Now()
	in, err := p.pool.get(ctx)
	if err != nil {
		return p.wrap(hook, err)
	}
	in.scratch = encode(in.scratch[:0])
	if uint64(len(in.scratch)) > in.memLimit {
		err := p.wrap(hook, fmt.Errorf("%d records encode to %d bytes, more than the plugin's %d bytes of memory",
			n, len(in.scratch), in.memLimit))
		in.scratch = nil
		p.pool.put(in)
		return err
	}
	cctx, cancel := context.WithTimeout(withSink(ctx, p.sink), p.h.limits.CallTimeout)
	out, err := in.run(cctx, hook, in.scratch, extra...)
	if err == nil {
		if perr := parse(out); perr != nil {
			err = fmt.Errorf("%w: %s output: %v", ErrBadOutput, hook, perr)
		}
	}
	cancel()
	if cap(in.scratch) > 4<<20 {
		in.scratch = nil // do not pin a rare huge batch
	}
	elapsed := time.Since(start)

	var status *StatusError
	switch {
	case err == nil:
		p.pool.put(in)
		p.record(n, elapsed, outcomeOK)
		return nil
	case errors.As(err, &status):
		p.pool.put(in)
		p.record(n, elapsed, outcomeStatus)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The caller gave up: the guest was stopped mid-call, so the
		// instance goes, but it is not the plugin's failure.
		p.pool.discard(in)
		p.record(n, elapsed, outcomeCanceled)
		p.refill()
	default:
		p.pool.discard(in)
		p.record(n, elapsed, outcomeFault)
		p.fail(err)
		p.refill()
	}
	return p.wrap(hook, err)
}

type outcome int

const (
	outcomeOK       outcome = iota // resets the consecutive failures
	outcomeStatus                  // a negative status: counted apart
	outcomeCanceled                // the caller's context: counted nowhere
	outcomeFault                   // a failure: see fail
)

// record counts a call.
func (p *Plugin) record(n int, d time.Duration, o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.records += int64(n)
	p.total += d
	p.max = max(p.max, d)
	switch o {
	case outcomeOK:
		p.consecutive = 0
	case outcomeStatus:
		p.statusErrs++
	}
}

// fail counts a failure and marks the plugin failed after
// FailuresBeforeFailed in a row.
func (p *Plugin) fail(err error) {
	p.mu.Lock()
	p.failures++
	p.consecutive++
	p.lastErr = err
	justFailed := !p.failed && p.consecutive >= p.h.limits.FailuresBeforeFailed
	if justFailed {
		p.failed = true
	}
	consecutive := p.consecutive
	p.mu.Unlock()
	p.log.Warn().Err(err).Int("consecutive", consecutive).Msg("plugin call failed; instance discarded")
	if justFailed {
		p.log.Error().Err(err).Int("consecutive", consecutive).Msg("plugin marked failed")
	}
}

// build creates an instance for the pool; a failure counts.
func (p *Plugin) build(ctx context.Context) (*instance, error) {
	ictx, cancel := context.WithTimeout(ctx, p.h.limits.InitTimeout)
	defer cancel()
	in, err := p.h.instantiate(ictx, p.mod, p.cfg, p.sink)
	if err != nil {
		if !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
			p.fail(fmt.Errorf("new instance: %w", err))
		}
		return nil, fmt.Errorf("new instance: %w", err)
	}
	return in, nil
}

// refill builds a replacement for a discarded instance off the request
// path, unless the plugin is closed or failed or has an idle instance.
func (p *Plugin) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.failed || !p.pool.reserve() {
		return
	}
	p.refills.Add(1)
	go func() {
		defer p.refills.Done()
		in, err := p.build(context.Background())
		if err != nil {
			p.pool.release()
			return
		}
		p.pool.put(in)
	}()
}
