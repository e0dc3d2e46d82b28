package pdk

import (
	"fmt"
	"slices"
	"strings"

	"github.com/eddybroker/eddy/plugins/abi"
)

// Record is one record of a batch, as a handler sees it.
//
// Key, Value and Headers alias the guest's input buffer and a slice the kit
// reuses for the next record: they are valid only during the callback.
// Copy (bytes.Clone, string(...)) anything that must outlive it.
type Record struct {
	// Index is the record's position in the batch the host passed.
	Index int
	// OffsetDelta is the record's offset relative to the batch's base
	// offset (for retention: relative to the first record passed).
	OffsetDelta int64
	// Timestamp is in Unix milliseconds.
	Timestamp int64
	// Key and Value are nil for null; an empty non-nil slice is an empty
	// key or value.
	Key, Value []byte
	// Headers are in the order the producer sent them.
	Headers []Header
}

// Header is a record header. Value is nil for a null value. Both alias the
// input buffer, like the Record's Key and Value.
type Header struct {
	Key, Value []byte
}

// Header returns the value of the last header named key (Kafka allows
// repeats; the last one wins, as with Java's Headers.lastHeader). It does
// not allocate.
func (r Record) Header(key string) (value []byte, ok bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if string(r.Headers[i].Key) == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// Verdict is a validator's outcome for one record; the zero value accepts.
// Build one with Accept or Reject.
type Verdict = abi.Verdict

// Accept returns the verdict that lets a record through.
func Accept() Verdict { return Verdict{} }

// Reject returns a verdict that refuses a record. The producer receives
// reason as the record's INVALID_RECORD error message; code is the
// plugin's own classification (reported to the host, not to Kafka
// clients). Reasons longer than 1 KiB are cut, as the host would cut them,
// so that a batch's verdicts stay within the host's output limit.
func Reject(code uint32, reason string) Verdict {
	return Verdict{Reject: true, Code: code, Reason: reason}
}

// Config is the operator's configuration of a plugin instance: the
// key/value pairs set on the topic's plugin binding. A key that was not set
// is absent; one set to "" is present and empty.
type Config map[string]string

// Required returns the value of key, or an error naming the key if it is
// absent or empty.
func (c Config) Required(key string) (string, error) {
	v, ok := c[key]
	if !ok || v == "" {
		return "", fmt.Errorf("config: %q is required", key)
	}
	return v, nil
}

// CheckKeys returns an error naming the first key (in sorted order) that is
// not among known, so a misspelt option fails init instead of being
// silently ignored.
func (c Config) CheckKeys(known ...string) error {
	var unknown []string
	for k := range c {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("config: unknown key %q (known: %s)", unknown[0], strings.Join(known, ", "))
}

// Level is a log level, numbered as the eddy.log import takes it
// (docs/plugins.md): 0 debug, 1 info, 2 warn, 3 error.
type Level int32

// Log levels.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// String names the level.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("level(%d)", int32(l))
}

// handlers are the plugin's callbacks, set in init.
var handlers struct {
	init      func(Config) error
	validate  func(Record) Verdict
	partition func(Record, int) int
	retain    func(Record, int64) bool
}

// OnInit registers the handler for eddy_init, called once per module
// instance before any batch with the operator's config. An error fails the
// instance with abi.StatusInitFailed and the error's text. Without an
// OnInit handler, eddy_init returns abi.StatusNoHook. Registering again
// replaces the handler.
func OnInit(h func(Config) error) { handlers.init = h }

// OnValidate makes the plugin a validator: h is called for each record of
// a produced batch and returns Accept() or Reject(code, reason).
// Registering again replaces the handler.
func OnValidate(h func(Record) Verdict) { handlers.validate = h }

// OnPartition makes the plugin a partitioner: h is called for each record
// with the topic's partition count (> 0) and returns a partition in
// [0, partitions). A value out of range fails the whole batch with
// abi.StatusHandlerError. Registering again replaces the handler.
func OnPartition(h func(r Record, partitions int) int) { handlers.partition = h }

// OnRetain makes the plugin a retention policy: h is called for each
// record with the current time in Unix milliseconds and reports whether
// the record has expired and may be deleted. The host deletes a segment
// only when all its records, and all older ones, have expired.
// Registering again replaces the handler.
func OnRetain(h func(r Record, nowMs int64) (expired bool)) { handlers.retain = h }
