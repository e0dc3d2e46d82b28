package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Partition commands are binary: they carry produce batches on the hot path
// and must not be re-encoded. The first byte is the kind.
const (
	kindAppend       byte = 1
	kindAdvanceStart byte = 2
)

// appendHeaderLen is kind(1) + leader epoch(4) + append time(8) + flags(1).
const appendHeaderLen = 14

const flagLogAppendTime byte = 1

// AppendCommand is what the leader proposes for a produce: the batches
// exactly as the producer sent them (already validated), plus the inputs
// Update needs to stay deterministic: the leader's epoch and clock.
type AppendCommand struct {
	LeaderEpoch   int32
	AppendTimeMs  int64
	LogAppendTime bool
	Batches       []byte
}

// EncodeAppend appends the encoded command to dst. It copies Batches, so
// the caller may reuse them once it returns.
func EncodeAppend(dst []byte, c AppendCommand) []byte {
	var flags byte
	if c.LogAppendTime {
		flags |= flagLogAppendTime
	}
	dst = append(dst, kindAppend)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.LeaderEpoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.AppendTimeMs))
	dst = append(dst, flags)
	return append(dst, c.Batches...)
}

// EncodeAdvanceStart encodes a move of the log start offset (DeleteRecords
// or retention) so every replica deletes the same prefix.
func EncodeAdvanceStart(offset int64) []byte {
	b := make([]byte, 9)
	b[0] = kindAdvanceStart
	binary.BigEndian.PutUint64(b[1:], uint64(offset))
	return b
}

var errBadCommand = errors.New("fsm: malformed partition command")

func decodeAppend(b []byte) (AppendCommand, error) {
	if len(b) < appendHeaderLen || b[0] != kindAppend {
		return AppendCommand{}, fmt.Errorf("%w: append of %d bytes", errBadCommand, len(b))
	}
	return AppendCommand{
		LeaderEpoch:   int32(binary.BigEndian.Uint32(b[1:])),
		AppendTimeMs:  int64(binary.BigEndian.Uint64(b[5:])),
		LogAppendTime: b[13]&flagLogAppendTime != 0,
		Batches:       b[appendHeaderLen:],
	}, nil
}

func decodeAdvanceStart(b []byte) (int64, error) {
	if len(b) != 9 || b[0] != kindAdvanceStart {
		return 0, fmt.Errorf("%w: advance-start of %d bytes", errBadCommand, len(b))
	}
	return int64(binary.BigEndian.Uint64(b[1:])), nil
}

// Result codes of partition commands, carried in sm.Result.Value with the
// top bit set. Offsets are below 1<<63, so a set top bit is never an offset.
const (
	resultFailed = uint64(1) << 63
	codeMask     = resultFailed - 1

	CodeMalformed            = 1 // the command or a batch in it could not be parsed
	CodeOffsetOutOfRange     = 2 // an advance-start beyond the end of the log
	CodeOutOfOrderSequence   = 3 // an idempotent producer skipped sequence numbers
	CodeInvalidProducerEpoch = 4 // an idempotent producer was fenced by a newer epoch
	CodeUnknownProducerID    = 5 // a producer the partition has no state for
)

// ErrCommandRefused is returned by DecodeResult for a command the state
// machine refused; errors.As gives the *CommandError.
var ErrCommandRefused = errors.New("fsm: command refused")

// CommandError is a refused partition command.
type CommandError struct {
	Code    int
	Message string
}

func (e *CommandError) Error() string { return "fsm: " + e.Message }
func (e *CommandError) Unwrap() error { return ErrCommandRefused }

// DecodeResult turns a partition command's result into its value (the base
// offset of an append, the new start offset of an advance) or its error.
func DecodeResult(value uint64, data []byte) (int64, error) {
	if value&resultFailed == 0 {
		return int64(value), nil
	}
	return 0, &CommandError{Code: int(value & codeMask), Message: string(data)}
}
