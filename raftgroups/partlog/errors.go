package partlog

import "errors"

// Sentinels a caller can match with errors.Is. Every error returned by this
// package wraps one of them and says which batch, offset or file is at fault.
var (
	// ErrCorruptBatch: bad framing, counts or CRC in a batch (Kafka
	// CORRUPT_MESSAGE).
	ErrCorruptBatch = errors.New("partlog: corrupt record batch")
	// ErrUnsupportedMagic: a batch that is not RecordBatch v2 (Kafka
	// UNSUPPORTED_FOR_MESSAGE_FORMAT).
	ErrUnsupportedMagic = errors.New("partlog: unsupported record batch magic")
	// ErrBatchTooLarge: a batch above the topic's max.message.bytes (Kafka
	// MESSAGE_TOO_LARGE).
	ErrBatchTooLarge = errors.New("partlog: record batch too large")
	// ErrUnsupportedCompression: a compression codec id other than 0-4.
	ErrUnsupportedCompression = errors.New("partlog: unsupported compression codec")
	// ErrDecompressedTooLarge: a compressed batch inflates past the caller's
	// limit.
	ErrDecompressedTooLarge = errors.New("partlog: decompressed records exceed limit")

	// ErrOffsetOutOfRange: an offset below the log start or above the log
	// end (Kafka OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("partlog: offset out of range")
	// ErrNotBatchBoundary: Truncate was asked to cut inside a batch.
	ErrNotBatchBoundary = errors.New("partlog: offset is not a batch boundary")
	// ErrCorruptLog: on-disk data that recovery must not repair silently,
	// such as a damaged sealed segment or a gap between segments.
	ErrCorruptLog = errors.New("partlog: corrupt log")
	// ErrBadSnapshot: a snapshot stream that is malformed or does not match
	// what it declares.
	ErrBadSnapshot = errors.New("partlog: bad snapshot stream")
	// ErrInvalidConfig: a Config field out of range.
	ErrInvalidConfig = errors.New("partlog: invalid config")
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("partlog: log closed")
)
