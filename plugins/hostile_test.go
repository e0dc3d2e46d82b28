package plugins

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHostileContained: each hostile module fails its call quickly, loses
// the instance, counts the failure, and is marked failed after
// FailuresBeforeFailed in a row, while a healthy plugin on the same host
// keeps working. Reset lets calls through again.
func TestHostileContained(t *testing.T) {
	const failures = 3
	for _, tc := range []struct {
		module string
		want   error
		msg    string
	}{
		{"loop", ErrTimeout, "eddy_validate_batch was stopped"},
		{"grow", ErrCrashed, "unreachable"},
		{"trap", ErrCrashed, "unreachable"},
		{"exit", ErrCrashed, "the guest exited with code 3"},
		{"oob_pointer", ErrBadOutput, "returned output at 0x7fff0000+16, outside the module's"},
		{"miscount", ErrBadOutput, "3 verdicts for 2 records"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			h, rec := newTestHost(t, func(c *Config) {
				c.Limits.CallTimeout = 50 * time.Millisecond
				c.Limits.FailuresBeforeFailed = failures
				c.Limits.MaxInstances = 2
			})
			ctx := context.Background()
			bad := load(t, h, tc.module, nil)
			good := load(t, h, "accept_all", nil)
			for i := range failures {
				start := time.Now()
				_, err := bad.Validate(ctx, records(2, 8))
				if i == 0 {
					t.Log(err)
				}
				require.ErrorIs(t, err, tc.want, "call %d", i)
				require.ErrorContains(t, err, tc.msg)
				require.Less(t, time.Since(start), 2*time.Second, "the error comes back quickly")
				st := bad.Stats()
				require.Equal(t, int64(i+1), st.Failures)
				require.Equal(t, i+1, st.ConsecutiveFailures)
				require.Equal(t, i+1 == failures, st.Failed)
				require.LessOrEqual(t, st.Instances, 2)

				vs, err := good.Validate(ctx, records(2, 8))
				require.NoError(t, err, "the healthy plugin is unaffected")
				require.Len(t, vs, 2)
			}
			_, err := bad.Validate(ctx, records(2, 8))
			t.Log(err)
			require.ErrorIs(t, err, ErrFailed)
			require.ErrorIs(t, err, tc.want, "ErrFailed comes with the last failure")
			require.Equal(t, int64(failures), bad.Stats().Failures, "a failed plugin is not called")
			require.NotEmpty(t, rec.find("plugin marked failed"))

			bad.Reset()
			_, err = bad.Validate(ctx, records(2, 8))
			require.ErrorIs(t, err, tc.want, "Reset calls the guest again")
			require.NotErrorIs(t, err, ErrFailed)
			require.Equal(t, 1, bad.Stats().ConsecutiveFailures)
		})
	}
}

// TestTrapDiscardsInstance: trap.wat traps on the first call of each
// instance and would answer on the second; every call trapping proves no
// instance is reused after a trap.
func TestTrapDiscardsInstance(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) {
		c.Limits.FailuresBeforeFailed = 100
		c.Limits.MaxInstances = 1
	})
	p := load(t, h, "trap", nil)
	for range 5 {
		_, err := p.Validate(context.Background(), records(1, 1))
		require.ErrorIs(t, err, ErrCrashed)
	}
	require.Equal(t, int64(5), p.Stats().Failures)
}

// TestLoopingDoesNotStallOthers: while a looping guest holds its call, a
// healthy plugin answers promptly and Go's garbage collector (a
// stop-the-world) completes, well before the loop's deadline.
func TestLoopingDoesNotStallOthers(t *testing.T) {
	h, rec := newTestHost(t, func(c *Config) { c.Limits.CallTimeout = 10 * time.Second })
	ctx := context.Background()
	loop := load(t, h, "loop", nil)
	good := load(t, h, "accept_all", nil)

	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	loopErr := make(chan error, 1)
	go func() {
		_, err := loop.Validate(loopCtx, records(1, 1))
		loopErr <- err
	}()
	rec.waitFor(t, `"message":"looping"`, 5*time.Second)

	gcDone := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		runtime.GC()
		gcDone <- time.Since(start)
	}()
	select {
	case d := <-gcDone:
		t.Logf("runtime.GC took %v while a guest looped", d)
	case <-time.After(2 * time.Second):
		t.Fatal("runtime.GC did not complete within 2s while a guest looped")
	}

	var worst time.Duration
	for range 50 {
		start := time.Now()
		_, err := good.Validate(ctx, records(100, 100))
		require.NoError(t, err)
		worst = max(worst, time.Since(start))
	}
	require.Less(t, worst, 500*time.Millisecond, "healthy calls are not held up by the looping one")
	select {
	case err := <-loopErr:
		t.Fatalf("the loop ended early: %v", err)
	default:
	}

	// The caller giving up stops the guest too, and is not the plugin's
	// failure.
	start := time.Now()
	stopLoop()
	err := <-loopErr
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), time.Second)
	st := loop.Stats()
	require.Zero(t, st.Failures)
	require.Zero(t, st.ConsecutiveFailures)
}

// TestWaitForInstanceHonoursContext: with every instance busy, a call
// waits for one only as long as its context allows.
func TestWaitForInstanceHonoursContext(t *testing.T) {
	h, rec := newTestHost(t, func(c *Config) {
		c.Limits.CallTimeout = 5 * time.Second
		c.Limits.MaxInstances = 1
	})
	p := load(t, h, "loop", nil)
	busyCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = p.Validate(busyCtx, records(1, 1))
	}()
	rec.waitFor(t, `"message":"looping"`, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Validate(ctx, records(1, 1))
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	require.Less(t, time.Since(start), time.Second)
	stop()
	wg.Wait()
}

// TestMemoryLimit: the guest cannot grow its memory past MemoryBytes.
func TestMemoryLimit(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.MemoryBytes = 4 << 20 })
	p := load(t, h, "grow", nil)
	in, err := p.pool.get(context.Background())
	require.NoError(t, err)
	defer p.pool.discard(in)
	_, ok := in.mem.Grow(65534) // to 4 GiB
	require.False(t, ok, "grow to 4 GiB refused")
	_, ok = in.mem.Grow(64 - in.mem.Size()/pageSize) // to 4 MiB
	require.True(t, ok)
	_, ok = in.mem.Grow(1)
	require.False(t, ok, "one page past the limit is refused")
	require.Equal(t, uint32(4<<20), in.mem.Size())
}

// TestCallerCancelIsNotAFailure: a caller giving up stops the guest and
// costs the instance, but neither counts as a failure nor clears the
// failures before it.
func TestCallerCancelIsNotAFailure(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.CallTimeout = 100 * time.Millisecond })
	p := load(t, h, "loop", nil)
	_, err := p.Validate(context.Background(), records(1, 1))
	require.ErrorIs(t, err, ErrTimeout)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = p.Validate(ctx, records(1, 1))
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrTimeout)
	st := p.Stats()
	require.Equal(t, int64(1), st.Failures)
	require.Equal(t, 1, st.ConsecutiveFailures)
	require.Equal(t, int64(2), st.Calls)
}
