// Package pdktest runs a plugin's pdk handlers natively, for unit tests.
//
// It makes the calls an eddy host makes, through the same dispatch code the
// wasm exports use: it asks for the guest's input buffer, writes the
// encoded input there (package abi), calls the hook and decodes the output
// block the way the host does. Only wazero and the wasm compiler are left
// out, so a plugin's logic is tested with go test, a debugger and the race
// detector.
//
//	func TestRejectsNegativePrice(t *testing.T) {
//		pdktest.Init(t, map[string]string{"schema": schema})
//		got := pdktest.Validate(t, pdktest.Value(`{"price": -1}`))
//		if !got[0].Reject {
//			t.Fatal("accepted a negative price")
//		}
//	}
//
// Handlers and their state are package globals, as in the wasm module, so
// tests that use pdktest must not run in parallel with each other (calls
// are serialised, but one test's Init would change another's config).
package pdktest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/eddybroker/eddy/plugins/pdk/internal/hostcall"
)

// maxReason is how much of a rejection reason the decoder keeps: all of it
// (the host cuts reasons; tests see what the plugin wrote).
const maxReason = 1 << 20

// mu serialises calls: the guest's buffers are shared, as in one module
// instance.
var mu sync.Mutex

// StatusError is a negative status returned by a hook, with the guest's
// last error.
type StatusError struct {
	Hook    string // export name, e.g. abi.ExportValidate
	Status  int32  // abi.Status...
	Message string // eddy_last_error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s returned %d (%s): %s", e.Hook, e.Status, abi.StatusText(e.Status), e.Message)
}

// StatusOf returns the status of a *StatusError in err's chain, or
// abi.StatusOK.
func StatusOf(err error) int32 {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return abi.StatusOK
}

// Value returns a record with a null key and value v.
func Value(v string) abi.Record { return abi.Record{Value: []byte(v)} }

// KeyValue returns a record with key k and value v.
func KeyValue(k, v string) abi.Record { return abi.Record{Key: []byte(k), Value: []byte(v)} }

// Init calls the plugin's OnInit handler with cfg and fails t if it
// returns an error.
func Init(t testing.TB, cfg map[string]string) {
	t.Helper()
	if err := call(t, func() error { return TryInit(cfg) }); err != nil {
		t.Fatal(err)
	}
}

// TryInit calls the plugin's OnInit handler with cfg. A handler error
// comes back as a *StatusError with abi.StatusInitFailed and its text.
func TryInit(cfg map[string]string) error {
	mu.Lock()
	defer mu.Unlock()
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	n, err := write(abi.AppendConfig(nil, keys, cfg))
	if err != nil {
		return err
	}
	if st := hostcall.Guest.Init(n); st != abi.StatusOK {
		return statusError(abi.ExportInit, st)
	}
	return nil
}

// Validate runs the plugin's OnValidate handler over records as one batch
// and returns a verdict per record. It fails t on a negative status.
func Validate(t testing.TB, records ...abi.Record) []abi.Verdict {
	t.Helper()
	var vs []abi.Verdict
	if err := call(t, func() (err error) { vs, err = TryValidate(records...); return err }); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TryValidate runs the plugin's OnValidate handler over records as one
// batch and decodes the verdict block as the host does.
func TryValidate(records ...abi.Record) ([]abi.Verdict, error) {
	mu.Lock()
	defer mu.Unlock()
	n, err := write(abi.AppendBatch(nil, records))
	if err != nil {
		return nil, err
	}
	out, st := hostcall.Guest.Validate(n)
	if st != abi.StatusOK {
		return nil, statusError(abi.ExportValidate, st)
	}
	vs, err := abi.ParseVerdicts(out, len(records), maxReason)
	if err != nil {
		return nil, fmt.Errorf("%s: verdict block: %w", abi.ExportValidate, err)
	}
	return vs, nil
}

// Partition runs the plugin's OnPartition handler over records as one
// batch for a topic of partitions partitions and returns a partition per
// record. It fails t on a negative status.
func Partition(t testing.TB, partitions int, records ...abi.Record) []int32 {
	t.Helper()
	var ps []int32
	if err := call(t, func() (err error) { ps, err = TryPartition(partitions, records...); return err }); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TryPartition runs the plugin's OnPartition handler over records as one
// batch and decodes the partition block as the host does.
func TryPartition(partitions int, records ...abi.Record) ([]int32, error) {
	mu.Lock()
	defer mu.Unlock()
	n, err := write(abi.AppendBatch(nil, records))
	if err != nil {
		return nil, err
	}
	out, st := hostcall.Guest.Partition(n, int32(partitions))
	if st != abi.StatusOK {
		return nil, statusError(abi.ExportPartition, st)
	}
	ps, err := abi.ParsePartitions(out, len(records), int32(partitions))
	if err != nil {
		return nil, fmt.Errorf("%s: partition block: %w", abi.ExportPartition, err)
	}
	return ps, nil
}

// Retain runs the plugin's OnRetain handler over records at nowMs (Unix
// milliseconds) and returns whether each record has expired. It fails t on
// a negative status.
func Retain(t testing.TB, nowMs int64, records ...abi.Record) []bool {
	t.Helper()
	var es []bool
	if err := call(t, func() (err error) { es, err = TryRetain(nowMs, records...); return err }); err != nil {
		t.Fatal(err)
	}
	return es
}

// TryRetain runs the plugin's OnRetain handler over records at nowMs and
// decodes the answer as the host does.
func TryRetain(nowMs int64, records ...abi.Record) ([]bool, error) {
	mu.Lock()
	defer mu.Unlock()
	n, err := write(abi.AppendRetainInput(nil, nowMs, records))
	if err != nil {
		return nil, err
	}
	out, st := hostcall.Guest.Retain(n)
	if st != abi.StatusOK {
		return nil, statusError(abi.ExportRetain, st)
	}
	es, err := abi.ParseExpired(out, len(records))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abi.ExportRetain, err)
	}
	return es, nil
}

// call runs f with the plugin's log going to t.
func call(t testing.TB, f func() error) error {
	logMu.Lock()
	hostcall.LogSink = func(level int32, msg string) { t.Logf("plugin log %s: %s", pdk.Level(level), msg) }
	defer func() {
		hostcall.LogSink = nil
		logMu.Unlock()
	}()
	return f()
}

// logMu guards hostcall.LogSink for the duration of a call.
var logMu sync.Mutex

// write copies an input into the guest's input buffer, as the host does.
func write(in []byte) (int32, error) {
	if len(in) > 1<<31-1 {
		return 0, fmt.Errorf("input of %d bytes is too large", len(in))
	}
	buf := hostcall.Guest.InputBuffer(int32(len(in)))
	if buf == nil || len(buf) < len(in) {
		return 0, &StatusError{Hook: abi.ExportInputBuffer, Status: abi.StatusOutOfMemory, Message: fmt.Sprintf("no buffer for %d bytes", len(in))}
	}
	copy(buf, in)
	return int32(len(in)), nil
}

func statusError(hook string, st int32) *StatusError {
	return &StatusError{Hook: hook, Status: st, Message: string(hostcall.Guest.LastError())}
}
