// Package abi is the byte layout shared by eddy's plugin host and the guest
// kit: how a batch of records, plugin config, verdicts and partition lists
// are encoded in a module's memory (docs/plugins.md). It has no imports
// beyond the standard library so it compiles for wasip1 guests too.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the ABI a module declares through eddy_abi_version:
// major << 16 | minor. The host accepts the same major and a minor up to
// its own.
const (
	Major   = 1
	Minor   = 0
	Version = Major<<16 | Minor
)

// Status codes a hook returns (negative i32, or negative i64 in place of
// a packed pointer).
const (
	StatusOK           = 0
	StatusBadInput     = -1
	StatusPanic        = -2
	StatusNoHook       = -3
	StatusHandlerError = -4
	StatusOutOfMemory  = -5
	StatusUnsupported  = -6
	StatusInitFailed   = -7
)

// StatusText names a status code.
func StatusText(code int32) string {
	switch code {
	case StatusOK:
		return "ok"
	case StatusBadInput:
		return "bad input"
	case StatusPanic:
		return "the handler panicked"
	case StatusNoHook:
		return "hook not present"
	case StatusHandlerError:
		return "handler error"
	case StatusOutOfMemory:
		return "guest out of memory"
	case StatusUnsupported:
		return "not supported"
	case StatusInitFailed:
		return "init failed"
	}
	return fmt.Sprintf("status %d", code)
}

// Export names.
const (
	ExportVersion     = "eddy_abi_version"
	ExportInputBuffer = "eddy_input_buffer"
	ExportLastError   = "eddy_last_error"
	ExportInit        = "eddy_init"
	ExportValidate    = "eddy_validate_batch"
	ExportPartition   = "eddy_partition_batch"
	ExportRetain      = "eddy_retain_records"
)

// Kinds a plugin can implement, from its exports.
const (
	KindValidator   = "validator"
	KindPartitioner = "partitioner"
	KindRetention   = "retention"
)

// Verdicts.
const (
	Accept = 0
	Reject = 1
)

// ErrShort: an encoded block ended early or a length does not fit.
var ErrShort = errors.New("abi: truncated or inconsistent block")

// Header is a record header.
type Header struct {
	Key   string
	Value []byte // nil is a null value
}

// Record is one record of a batch. Key and Value nil mean null.
type Record struct {
	OffsetDelta int64
	Timestamp   int64
	Key         []byte
	Value       []byte
	Headers     []Header
}

// AppendBatch appends the encoding of records to dst: u32 count, then per
// record i64 offset_delta, i64 timestamp, i32 key_len (-1 null), key,
// i32 value_len (-1 null), value, u32 header_count, and per header
// u32 klen, k, i32 vlen (-1 null), v. Little-endian.
func AppendBatch(dst []byte, records []Record) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(records)))
	for _, r := range records {
		dst = AppendRecord(dst, r)
	}
	return dst
}

// AppendRecord appends one record's encoding (without the batch count).
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.OffsetDelta))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Timestamp))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, 0xFFFFFFFF)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// BatchReader walks an encoded batch without copying: the slices it
// returns point into the block.
type BatchReader struct {
	buf   []byte
	count uint32
	read  uint32
	err   error
}

// NewBatchReader starts reading block.
func NewBatchReader(block []byte) (*BatchReader, error) {
	if len(block) < 4 {
		return nil, ErrShort
	}
	return &BatchReader{buf: block[4:], count: binary.LittleEndian.Uint32(block)}, nil
}

// Count is the number of records the block says it holds.
func (b *BatchReader) Count() int { return int(b.count) }

// Next decodes the next record into r (reusing r.Headers), returning
// false at the end or on an error (see Err).
func (b *BatchReader) Next(r *Record) bool {
	if b.err != nil || b.read >= b.count {
		return false
	}
	if len(b.buf) < 16 {
		b.err = ErrShort
		return false
	}
	r.OffsetDelta = int64(binary.LittleEndian.Uint64(b.buf))
	r.Timestamp = int64(binary.LittleEndian.Uint64(b.buf[8:]))
	b.buf = b.buf[16:]
	var ok bool
	if r.Key, ok = b.nullable(); !ok {
		return false
	}
	if r.Value, ok = b.nullable(); !ok {
		return false
	}
	if len(b.buf) < 4 {
		b.err = ErrShort
		return false
	}
	n := binary.LittleEndian.Uint32(b.buf)
	b.buf = b.buf[4:]
	if uint64(n)*8 > uint64(len(b.buf)) {
		b.err = ErrShort
		return false
	}
	r.Headers = r.Headers[:0]
	for range n {
		if len(b.buf) < 4 {
			b.err = ErrShort
			return false
		}
		kl := binary.LittleEndian.Uint32(b.buf)
		b.buf = b.buf[4:]
		if uint64(kl) > uint64(len(b.buf)) {
			b.err = ErrShort
			return false
		}
		k := string(b.buf[:kl])
		b.buf = b.buf[kl:]
		v, ok := b.nullable()
		if !ok {
			return false
		}
		r.Headers = append(r.Headers, Header{Key: k, Value: v})
	}
	b.read++
	return true
}

func (b *BatchReader) nullable() ([]byte, bool) {
	if len(b.buf) < 4 {
		b.err = ErrShort
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b.buf)
	b.buf = b.buf[4:]
	if n == 0xFFFFFFFF {
		return nil, true
	}
	if uint64(n) > uint64(len(b.buf)) {
		b.err = ErrShort
		return nil, false
	}
	v := b.buf[:n:n]
	b.buf = b.buf[n:]
	return v, true
}

// Err is the first decoding error.
func (b *BatchReader) Err() error { return b.err }

// Verdict is one record's outcome.
type Verdict struct {
	Reject bool
	Code   uint32
	Reason string
}

// AppendVerdicts encodes verdicts: u32 count, count verdict bytes
// (0 accept, 1 reject), then per rejected record u32 index, u32 code,
// u32 len, reason.
func AppendVerdicts(dst []byte, vs []Verdict) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(vs)))
	for _, v := range vs {
		if v.Reject {
			dst = append(dst, Reject)
		} else {
			dst = append(dst, Accept)
		}
	}
	for i, v := range vs {
		if !v.Reject {
			continue
		}
		dst = binary.LittleEndian.AppendUint32(dst, uint32(i))
		dst = binary.LittleEndian.AppendUint32(dst, v.Code)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v.Reason)))
		dst = append(dst, v.Reason...)
	}
	return dst
}

// ParseVerdicts decodes a verdict block for a batch of want records.
// Reasons longer than maxReason are cut.
func ParseVerdicts(block []byte, want, maxReason int) ([]Verdict, error) {
	if len(block) < 4 {
		return nil, ErrShort
	}
	n := int(binary.LittleEndian.Uint32(block))
	if n != want {
		return nil, fmt.Errorf("abi: %d verdicts for %d records", n, want)
	}
	block = block[4:]
	if len(block) < n {
		return nil, ErrShort
	}
	vs := make([]Verdict, n)
	rejected := 0
	for i := range n {
		switch block[i] {
		case Accept:
		case Reject:
			vs[i].Reject = true
			rejected++
		default:
			return nil, fmt.Errorf("abi: verdict %d of record %d is neither accept (0) nor reject (1)", block[i], i)
		}
	}
	block = block[n:]
	for range rejected {
		if len(block) < 12 {
			return nil, ErrShort
		}
		idx := binary.LittleEndian.Uint32(block)
		code := binary.LittleEndian.Uint32(block[4:])
		l := binary.LittleEndian.Uint32(block[8:])
		block = block[12:]
		if uint64(l) > uint64(len(block)) || int(idx) >= n || !vs[idx].Reject {
			return nil, ErrShort
		}
		reason := block[:l]
		block = block[l:]
		if len(reason) > maxReason {
			reason = reason[:maxReason]
		}
		vs[idx].Code, vs[idx].Reason = code, string(reason)
	}
	return vs, nil
}

// Retention: eddy_retain_records(len) gets u64 now (Unix ms) followed by
// a batch (AppendBatch; OffsetDelta is the record's offset relative to the
// first record passed) and returns u32 count then one byte per record:
// 1 = expired (may be deleted), 0 = keep. The host deletes a segment only
// when every record in it, and in every older segment, is expired.

// AppendRetainInput encodes the input of eddy_retain_records.
func AppendRetainInput(dst []byte, nowMs int64, records []Record) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(nowMs))
	return AppendBatch(dst, records)
}

// SplitRetainInput returns now and the batch block of a retention input.
func SplitRetainInput(block []byte) (nowMs int64, batch []byte, err error) {
	if len(block) < 8 {
		return 0, nil, ErrShort
	}
	return int64(binary.LittleEndian.Uint64(block)), block[8:], nil
}

// AppendExpired encodes a retention answer.
func AppendExpired(dst []byte, expired []bool) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(expired)))
	for _, e := range expired {
		if e {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	}
	return dst
}

// ParseExpired decodes a retention answer for want records.
func ParseExpired(block []byte, want int) ([]bool, error) {
	if len(block) < 4 || int(binary.LittleEndian.Uint32(block)) != want || len(block)-4 < want {
		return nil, fmt.Errorf("abi: retention answer does not cover %d records", want)
	}
	out := make([]bool, want)
	for i := range out {
		switch block[4+i] {
		case 0:
		case 1:
			out[i] = true
		default:
			return nil, fmt.Errorf("abi: retention flag %d of record %d is neither 0 nor 1", block[4+i], i)
		}
	}
	return out, nil
}

// AppendPartitions encodes u32 count then one i32 partition per record.
func AppendPartitions(dst []byte, parts []int32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(parts)))
	for _, p := range parts {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(p))
	}
	return dst
}

// ParsePartitions decodes a partition block for want records, each in
// [0, partitions).
func ParsePartitions(block []byte, want int, partitions int32) ([]int32, error) {
	if len(block) < 4 {
		return nil, ErrShort
	}
	n := int(binary.LittleEndian.Uint32(block))
	if n != want || len(block)-4 < 4*n {
		return nil, fmt.Errorf("abi: %d partitions for %d records", n, want)
	}
	out := make([]int32, n)
	for i := range out {
		p := int32(binary.LittleEndian.Uint32(block[4+4*i:]))
		if p < 0 || p >= partitions {
			return nil, fmt.Errorf("abi: record %d placed in partition %d of %d", i, p, partitions)
		}
		out[i] = p
	}
	return out, nil
}

// AppendConfig encodes plugin config: u32 count, then per pair u32 klen,
// k, u32 vlen, v. Keys are written in the order given.
func AppendConfig(dst []byte, keys []string, cfg map[string]string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(keys)))
	for _, k := range keys {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(k)))
		dst = append(dst, k...)
		v := cfg[k]
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// ParseConfig decodes a config block.
func ParseConfig(block []byte) (map[string]string, error) {
	if len(block) < 4 {
		return nil, ErrShort
	}
	n := binary.LittleEndian.Uint32(block)
	block = block[4:]
	if uint64(n)*8 > uint64(len(block)) {
		return nil, ErrShort
	}
	cfg := make(map[string]string, n)
	for range n {
		k, rest, ok := lenPrefixed(block)
		if !ok {
			return nil, ErrShort
		}
		v, rest2, ok := lenPrefixed(rest)
		if !ok {
			return nil, ErrShort
		}
		cfg[string(k)] = string(v)
		block = rest2
	}
	return cfg, nil
}

func lenPrefixed(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// PackResult packs a pointer and length into the i64 a hook returns.
func PackResult(ptr, length uint32) int64 { return int64(uint64(ptr)<<32 | uint64(length)) }

// UnpackResult splits a hook's i64 result: a negative value is a status.
func UnpackResult(v int64) (ptr, length uint32, status int32) {
	if v < 0 {
		return 0, 0, int32(v)
	}
	return uint32(uint64(v) >> 32), uint32(v), StatusOK
}
