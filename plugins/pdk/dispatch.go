package pdk

import (
	"fmt"
	"unicode/utf8"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk/internal/hostcall"
)

// The dispatch below is the whole guest side of the ABI as plain Go: bytes
// in, bytes and a status out. The wasip1 exports (exports_wasip1.go) are
// thin wrappers that turn slices into pointers; pdktest calls the same
// functions natively through hostcall.

// maxInput caps eddy_input_buffer: a larger request returns 0 (out of
// memory) instead of asking the Go runtime for memory it would fail to get,
// which is fatal rather than recoverable.
const maxInput = 1 << 30

// minInput is the smallest input buffer allocated, so small batches do not
// regrow it.
const minInput = 64 << 10

// maxReason is where the kit cuts a rejection reason: the host keeps no
// more (docs/plugins.md), and with it 1,000 rejected records fit the host's
// 1 MiB output limit.
const maxReason = 1024

// maxLastError is where the kit cuts the last error's message.
const maxLastError = 4096

// guest is the state one module instance keeps between calls. Every buffer
// is reused: a call allocates only when a batch is bigger than any before.
var guest struct {
	input    []byte // eddy_input_buffer; the host writes inputs here
	out      []byte // the last output block, valid until the next call
	lastErr  []byte // message for the last negative status
	rec      Record // reused for every record
	batch    batchReader
	verdicts []Verdict
	parts    []int32
	expired  []bool
}

func init() {
	hostcall.Guest.InputBuffer = inputBuffer
	hostcall.Guest.LastError = lastError
	hostcall.Guest.Init = initPlugin
	hostcall.Guest.Validate = validateBatch
	hostcall.Guest.Partition = partitionBatch
	hostcall.Guest.Retain = retainRecords
}

// inputBuffer returns a buffer of at least size bytes that the host writes
// the next call's input into, or nil if size is negative or too large. It
// grows by at least doubling and never shrinks.
func inputBuffer(size int32) []byte {
	if size < 0 || size > maxInput {
		return nil
	}
	if guest.input == nil || int(size) > cap(guest.input) {
		guest.input = make([]byte, min(max(int(size), 2*cap(guest.input), minInput), maxInput))
	}
	guest.input = guest.input[:cap(guest.input)]
	return guest.input
}

// lastError returns the message for the last negative status.
func lastError() []byte { return guest.lastErr }

// input returns the first n bytes of the input buffer.
func input(n int32) ([]byte, bool) {
	if n < 0 || int(n) > len(guest.input) {
		return nil, false
	}
	return guest.input[:n], true
}

// fail records the message for a negative status and returns the status.
func fail(status int32, format string, args ...any) int32 {
	guest.lastErr = fmt.Appendf(guest.lastErr[:0], format, args...)
	if len(guest.lastErr) > maxLastError {
		guest.lastErr = guest.lastErr[:cutUTF8(guest.lastErr, maxLastError)]
	}
	return status
}

// catch turns a handler's panic into abi.StatusPanic; defer it once per
// call.
func catch(hook string, status *int32, out *[]byte) {
	if p := recover(); p != nil {
		*out, *status = nil, fail(abi.StatusPanic, "%s: record %d: panic: %v", hook, guest.rec.Index, p)
	}
}

// begin checks that a hook's handler is registered and its input length is
// within the input buffer, and returns the input.
func begin(hook string, registered bool, n int32) ([]byte, int32) {
	if !registered {
		return nil, fail(abi.StatusNoHook, "%s: the plugin registers no handler for it", hook)
	}
	block, ok := input(n)
	if !ok {
		return nil, fail(abi.StatusBadInput, "%s: input length %d outside the %d-byte input buffer", hook, n, len(guest.input))
	}
	return block, abi.StatusOK
}

// startBatch starts the batch reader on block.
func startBatch(hook string, block []byte) int32 {
	if err := guest.batch.reset(block); err != nil {
		return fail(abi.StatusBadInput, "%s: %v", hook, err)
	}
	guest.rec.Index = 0
	return abi.StatusOK
}

// endBatch reports a batch that was cut short or had bytes left over.
func endBatch(hook string) int32 {
	if err := guest.batch.done(); err != nil {
		return fail(abi.StatusBadInput, "%s: %v", hook, err)
	}
	return abi.StatusOK
}

// cutUTF8 returns the largest length <= n at which s can be cut without
// splitting a UTF-8 sequence (n if s is not valid UTF-8 there).
func cutUTF8[S string | []byte](s S, n int) int {
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}

// initPlugin parses the config block and calls the OnInit handler.
func initPlugin(cfgLen int32) (status int32) {
	const hook = "init"
	h := handlers.init
	block, st := begin(hook, h != nil, cfgLen)
	if st != abi.StatusOK {
		return st
	}
	cfg, err := abi.ParseConfig(block)
	if err != nil {
		return fail(abi.StatusBadInput, "%s: config: %v", hook, err)
	}
	defer func() {
		if p := recover(); p != nil {
			status = fail(abi.StatusPanic, "%s: panic: %v", hook, p)
		}
	}()
	if err := h(Config(cfg)); err != nil {
		return fail(abi.StatusInitFailed, "%v", err)
	}
	return abi.StatusOK
}

// validateBatch runs the OnValidate handler over a batch and returns a
// verdict block (abi.AppendVerdicts).
func validateBatch(n int32) (out []byte, status int32) {
	const hook = "validate"
	h := handlers.validate
	block, st := begin(hook, h != nil, n)
	if st != abi.StatusOK {
		return nil, st
	}
	if st := startBatch(hook, block); st != abi.StatusOK {
		return nil, st
	}
	defer catch(hook, &status, &out)
	vs := guest.verdicts[:0]
	for guest.batch.next(&guest.rec) {
		v := h(guest.rec)
		if len(v.Reason) > maxReason {
			v.Reason = v.Reason[:cutUTF8(v.Reason, maxReason)]
		}
		vs = append(vs, v)
	}
	guest.verdicts = vs
	if st := endBatch(hook); st != abi.StatusOK {
		return nil, st
	}
	guest.out = abi.AppendVerdicts(guest.out[:0], vs)
	clear(vs) // drop the reasons
	return guest.out, abi.StatusOK
}

// partitionBatch runs the OnPartition handler over a batch and returns a
// partition block (abi.AppendPartitions).
func partitionBatch(n, partitions int32) (out []byte, status int32) {
	const hook = "partition"
	h := handlers.partition
	block, st := begin(hook, h != nil, n)
	if st != abi.StatusOK {
		return nil, st
	}
	if partitions <= 0 {
		return nil, fail(abi.StatusBadInput, "%s: %d partitions", hook, partitions)
	}
	if st := startBatch(hook, block); st != abi.StatusOK {
		return nil, st
	}
	defer catch(hook, &status, &out)
	ps := guest.parts[:0]
	for guest.batch.next(&guest.rec) {
		p := h(guest.rec, int(partitions))
		if p < 0 || p >= int(partitions) {
			return nil, fail(abi.StatusHandlerError, "%s: record %d: handler chose partition %d of %d", hook, guest.rec.Index, p, partitions)
		}
		ps = append(ps, int32(p))
	}
	guest.parts = ps
	if st := endBatch(hook); st != abi.StatusOK {
		return nil, st
	}
	guest.out = abi.AppendPartitions(guest.out[:0], ps)
	return guest.out, abi.StatusOK
}

// retainRecords runs the OnRetain handler over a retention input (u64 now
// in Unix ms, then a batch: abi.AppendRetainInput) and returns the expired
// flags (abi.AppendExpired).
func retainRecords(n int32) (out []byte, status int32) {
	const hook = "retain"
	h := handlers.retain
	block, st := begin(hook, h != nil, n)
	if st != abi.StatusOK {
		return nil, st
	}
	now, batch, err := abi.SplitRetainInput(block)
	if err != nil {
		return nil, fail(abi.StatusBadInput, "%s: %v", hook, err)
	}
	if st := startBatch(hook, batch); st != abi.StatusOK {
		return nil, st
	}
	defer catch(hook, &status, &out)
	es := guest.expired[:0]
	for guest.batch.next(&guest.rec) {
		es = append(es, h(guest.rec, now))
	}
	guest.expired = es
	if st := endBatch(hook); st != abi.StatusOK {
		return nil, st
	}
	guest.out = abi.AppendExpired(guest.out[:0], es)
	return guest.out, abi.StatusOK
}
