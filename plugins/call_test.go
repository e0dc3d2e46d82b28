package plugins

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	h, rec := newTestHost(t, func(c *Config) { c.Limits.MaxBatchRecords = 3 })
	ctx := context.Background()
	accept := load(t, h, "accept_all", nil)
	reject := load(t, h, "reject_empty", map[string]string{"strict": "yes"})
	require.NotEmpty(t, rec.find(`"message":"configured"`), "eddy.log from eddy_init reaches the log")

	rs := []abi.Record{
		{Key: []byte("a"), Value: []byte("x")},
		{Key: nil, Value: []byte{}},                                                   // empty
		{Key: []byte("b"), Value: nil, Headers: []abi.Header{{Key: "h", Value: nil}}}, // null
		{Key: []byte("c"), Value: []byte("y"), Headers: []abi.Header{{Key: "h1", Value: []byte("v")}, {Key: "", Value: []byte{}}}},
		{Key: []byte{}, Value: []byte("z")},
		{Value: []byte{}}, // empty, in the second batch of 3
		{Value: []byte("ok")},
	}
	got, err := accept.Validate(ctx, rs)
	require.NoError(t, err)
	require.Equal(t, make([]abi.Verdict, len(rs)), got, "accept-all walks every record (headers, nulls) and accepts it")

	got, err = reject.Validate(ctx, rs)
	require.NoError(t, err)
	empty := abi.Verdict{Reject: true, Code: 42, Reason: "value is empty"}
	require.Equal(t, []abi.Verdict{{}, empty, empty, {}, {}, empty, {}}, got)

	st := reject.Stats()
	require.Equal(t, int64(3), st.Calls, "7 records in batches of 3")
	require.Equal(t, int64(7), st.Records)
	require.Zero(t, st.Failures)
	require.Positive(t, st.MeanCall)
	require.GreaterOrEqual(t, st.MaxCall, st.MeanCall)

	got, err = accept.Validate(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestPartition(t *testing.T) {
	h, rec := newTestHost(t, nil)
	ctx := context.Background()
	p := load(t, h, "partition_keylen", nil)
	rec.waitFor(t, `"message":"partitioner ready"`, 5*time.Second)
	require.Contains(t, rec.find("partitioner ready")[0], `"stream":"stdout"`)

	rs := []abi.Record{{Key: []byte("abcde")}, {Key: nil}, {Key: []byte("ab")}, {Key: []byte("abcdefg")}}
	got, err := p.Partition(ctx, rs, 3)
	require.NoError(t, err)
	require.Equal(t, []int32{2, 0, 2, 1}, got)

	_, err = p.Partition(ctx, rs, 0)
	require.ErrorContains(t, err, "need at least one")
}

func TestRetainRecords(t *testing.T) {
	h, _ := newTestHost(t, nil)
	p := load(t, h, "retain_all", nil)
	got, err := p.RetainRecords(context.Background(), 1_700_000_000_000, records(5, 10))
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, true, true, true}, got)
}

func TestHookNotImplemented(t *testing.T) {
	h, _ := newTestHost(t, nil)
	ctx := context.Background()
	p := load(t, h, "accept_all", nil)
	_, err := p.Partition(ctx, records(1, 1), 4)
	require.ErrorIs(t, err, ErrNoHook)
	require.ErrorContains(t, err, "it does not export eddy_partition_batch, so it is not a partitioner")
	_, err = p.RetainRecords(ctx, 0, records(1, 1))
	require.ErrorContains(t, err, "it does not export eddy_retain_records, so it is not a retention")
	require.Zero(t, p.Stats().Failures)

	p = load(t, h, "pdk_like", nil)
	_, err = p.Partition(ctx, records(1, 1), 4)
	require.ErrorIs(t, err, ErrNoHook)
	require.ErrorContains(t, err, "its eddy_partition_batch has no handler, so it is not a partitioner")
	require.Zero(t, p.Stats().Calls, "the guest is not asked")
	_, err = p.Validate(ctx, records(3, 1))
	require.NoError(t, err)
}

func TestStatusKeepsInstance(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.FailuresBeforeFailed = 2 })
	ctx := context.Background()
	p := load(t, h, "status", nil)
	for range 5 {
		_, err := p.Validate(ctx, records(2, 10))
		var se *StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, abi.StatusHandlerError, int(se.Status))
		require.Equal(t, "schema registry unavailable", se.Message)
		require.ErrorContains(t, err, "eddy_validate_batch returned -4 (handler error): schema registry unavailable")
	}
	st := p.Stats()
	require.Equal(t, int64(5), st.StatusErrors)
	require.Zero(t, st.Failures, "a status is the plugin's answer, not a failure")
	require.False(t, st.Failed)
	require.Equal(t, 1, st.Instances, "the instance was kept")
}

func TestGuestOutOfMemory(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.MemoryBytes = 1 << 20 })
	ctx := context.Background()
	p := load(t, h, "accept_all", nil)

	// 500 KiB of input: the guest wants 2×input and cannot grow that far.
	_, err := p.Validate(ctx, records(5, 100<<10))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, int32(abi.StatusOutOfMemory), se.Status)
	require.Equal(t, abi.ExportInputBuffer, se.Hook)

	// More input than the whole memory: refused before calling.
	_, err = p.Validate(ctx, records(2, 1<<20))
	require.ErrorContains(t, err, "more than the plugin's 1048576 bytes of memory")

	got, err := p.Validate(ctx, records(2, 10))
	require.NoError(t, err, "the instance still works")
	require.Len(t, got, 2)
	require.Zero(t, p.Stats().Failures)
}

func TestConcurrentCalls(t *testing.T) {
	h, _ := newTestHost(t, func(c *Config) { c.Limits.MaxInstances = 2 })
	ctx := context.Background()
	validator := load(t, h, "reject_empty", nil)
	partitioner := load(t, h, "partition_keylen", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				rs := records(1+(g*7+i)%40, 64)
				rs[0].Value = nil
				vs, err := validator.Validate(ctx, rs)
				if err != nil {
					errs <- err
					return
				}
				if len(vs) != len(rs) || !vs[0].Reject || (len(vs) > 1 && vs[1].Reject) {
					errs <- fmt.Errorf("goroutine %d call %d: verdicts %+v", g, i, vs)
					return
				}
				ps, err := partitioner.Partition(ctx, rs, 5)
				if err != nil {
					errs <- err
					return
				}
				for j, p := range ps {
					if want := int32(len(rs[j].Key) % 5); p != want {
						errs <- fmt.Errorf("record %d in partition %d, want %d", j, p, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.LessOrEqual(t, validator.Stats().Instances, 2)
	require.Equal(t, int64(400), validator.Stats().Calls)
}
