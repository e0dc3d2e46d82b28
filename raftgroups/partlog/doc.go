// Package partlog owns the on-disk log of one partition replica: segment
// files holding Kafka RecordBatch v2 bytes exactly as they will be served,
// a sparse offset index and a time index per segment, crash recovery,
// retention mechanics (the caller decides, partlog deletes) and snapshot
// streaming for replicas that fell behind. It also owns the batch codec
// the produce path uses to validate batches and the decoder that lets a
// validator look inside them.
//
// It does not own replication, checkpoints of applied Raft indexes,
// producer-id state, or any clock: the Raft state machine drives it and
// passes the time in, so every replica that applies the same commands ends
// with the same offsets.
//
// It also holds the crash points (CrashPoint, EDDY_CRASHPOINT) that
// crash-consistency tests aim SIGKILLs at, in partlog's and the partition
// state machine's write paths: partlog is the leaf both import.
//
// Concurrency: a Log has exactly one writer (Append, Truncate, AdvanceStart,
// Sync, Snapshot, Close, called from one goroutine or otherwise serialized)
// and any number of concurrent readers (Read, OffsetForTimestamp,
// StartOffset, EndOffset, Size, MaxTimestamp, Segments), also while a write
// runs. Readers never see a half-written batch: a batch becomes visible
// only after all of its bytes are in the file.
package partlog
