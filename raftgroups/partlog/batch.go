package partlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Byte positions inside a RecordBatch v2 header. The CRC covers everything
// from attributes to the end of the batch, so baseOffset and
// partitionLeaderEpoch can be rewritten without recomputing it.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// BatchHeaderSize is the size of a RecordBatch v2 header; records follow it.
	BatchHeaderSize = 61
	// batchLengthOverhead is the part of the header that batchLength does not
	// count (baseOffset and batchLength itself).
	batchLengthOverhead = 12
	// minBatchLength is the smallest legal batchLength: a header and no records.
	minBatchLength = BatchHeaderSize - batchLengthOverhead

	// minRecordSize is the smallest encoded record: one byte each for length,
	// attributes, timestampDelta, offsetDelta, keyLen, valueLen, headerCount.
	minRecordSize = 7

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch (attributes bits 0-2).
type Codec int8

// The codecs Kafka defines for RecordBatch v2.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// BatchHeader is the decoded fixed-size header of a RecordBatch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32 // CRC32C of attributes..end of batch
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Compression returns the batch's codec.
func (h BatchHeader) Compression() Codec { return Codec(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether record timestamps are the broker's append
// time (MaxTimestamp) rather than the producer's create time.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the batch's total size in bytes, header included.
func (h BatchHeader) Size() int { return batchLengthOverhead + int(h.Length) }

// ParseBatchHeader decodes the first BatchHeaderSize bytes of b. It checks
// only what the header alone can tell (magic, a Length that can hold a
// header); it does not check that b holds the whole batch or its CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	// Magic sits at byte 16 in every message format version, so an old
	// v0/v1 message set is reported as such even when shorter than a v2
	// header.
	if len(b) <= offMagic {
		return BatchHeader{}, fmt.Errorf("%w: header truncated: %d bytes, need %d", ErrCorruptBatch, len(b), BatchHeaderSize)
	}
	if m := int8(b[offMagic]); m != 2 {
		return BatchHeader{}, fmt.Errorf("%w: magic %d, only 2 is supported", ErrUnsupportedMagic, m)
	}
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: header truncated: %d bytes, need %d", ErrCorruptBatch, len(b), BatchHeaderSize)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.Length < minBatchLength {
		return BatchHeader{}, fmt.Errorf("%w: batchLength %d below the header's %d", ErrCorruptBatch, h.Length, minBatchLength)
	}
	// Record offsets are baseOffset plus deltas up to lastOffsetDelta:
	// never negative, never wrapping. (Producers send 0; the log assigns
	// the real base offset.)
	if h.BaseOffset < 0 || (h.LastOffsetDelta > 0 && h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)) {
		return BatchHeader{}, fmt.Errorf("%w: baseOffset %d with lastOffsetDelta %d is out of range", ErrCorruptBatch, h.BaseOffset, h.LastOffsetDelta)
	}
	return h, nil
}

// checkBatch verifies one batch that starts at b[0] and may be followed by
// others: framing, counts and (when checkCRC) the CRC. It returns the header.
// Errors carry no batch number; callers add where the batch is.
func checkBatch(b []byte, checkCRC bool) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if size > len(b) {
		return h, fmt.Errorf("%w: batchLength %d runs past the data: %d bytes, %d present", ErrCorruptBatch, h.Length, size, len(b))
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorruptBatch, h.LastOffsetDelta)
	}
	if h.RecordCount < 1 {
		return h, fmt.Errorf("%w: recordCount %d, need at least 1", ErrCorruptBatch, h.RecordCount)
	}
	if int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: recordCount %d does not match lastOffsetDelta %d", ErrCorruptBatch, h.RecordCount, h.LastOffsetDelta)
	}
	c := h.Compression()
	if c > CodecZstd {
		return h, fmt.Errorf("%w: codec id %d", ErrUnsupportedCompression, int8(c))
	}
	// Compressed records can legitimately be far smaller than 7 bytes each;
	// their count is bounded after decompression instead.
	if c == CodecNone && int64(h.RecordCount)*minRecordSize > int64(size-BatchHeaderSize) {
		return h, fmt.Errorf("%w: recordCount %d cannot fit in %d bytes of records", ErrCorruptBatch, h.RecordCount, size-BatchHeaderSize)
	}
	if checkCRC {
		if got := crc32.Checksum(b[offAttributes:size], castagnoli); got != h.CRC {
			return h, fmt.Errorf("%w: crc32c mismatch: header %#08x computed %#08x", ErrCorruptBatch, h.CRC, got)
		}
	}
	return h, nil
}

// ValidateBatches checks the records field of a Produce request: one or more
// complete RecordBatch v2 back to back, each with a matching CRC32C, sane
// counts and a size of at most maxBatchBytes (Kafka's max.message.bytes
// applies to a whole batch; maxBatchBytes <= 0 means no limit). It returns
// the decoded headers in order. Errors wrap ErrCorruptBatch,
// ErrUnsupportedMagic, ErrUnsupportedCompression or ErrBatchTooLarge and name
// the batch and its byte position. It does not decode the records; use
// DecodeRecords for that.
func ValidateBatches(records []byte, maxBatchBytes int) ([]BatchHeader, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batch", ErrCorruptBatch)
	}
	var hs []BatchHeader
	for pos, i := 0, 0; pos < len(records); i++ {
		h, err := checkBatch(records[pos:], false)
		if err == nil && maxBatchBytes > 0 && h.Size() > maxBatchBytes {
			err = fmt.Errorf("%w: %d bytes, limit %d", ErrBatchTooLarge, h.Size(), maxBatchBytes)
		}
		if err == nil {
			if got := crc32.Checksum(records[pos+offAttributes:pos+h.Size()], castagnoli); got != h.CRC {
				err = fmt.Errorf("%w: crc32c mismatch: header %#08x computed %#08x", ErrCorruptBatch, h.CRC, got)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("batch %d at byte %d: %w", i, pos, err)
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}

// RewriteBatch stamps a batch in place as the log stores it: baseOffset and
// partitionLeaderEpoch (outside the CRC, so the CRC stays valid), and, when
// appendTime >= 0 (a LogAppendTime topic), the timestamp-type bit and
// maxTimestamp = appendTime, after which the CRC is recomputed. b must hold
// the whole batch.
func RewriteBatch(b []byte, baseOffset int64, leaderEpoch int32, appendTime int64) error {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return err
	}
	if h.Size() > len(b) {
		return fmt.Errorf("%w: batchLength %d runs past the data: %d bytes, %d present", ErrCorruptBatch, h.Length, h.Size(), len(b))
	}
	rewriteHeader(b[:BatchHeaderSize], b[BatchHeaderSize:h.Size()], baseOffset, leaderEpoch, appendTime)
	return nil
}

// rewriteHeader does RewriteBatch's work on a header held apart from its
// records, so Append can stamp a copy of the header and leave the caller's
// buffer untouched.
func rewriteHeader(hdr, records []byte, baseOffset int64, leaderEpoch int32, appendTime int64) {
	binary.BigEndian.PutUint64(hdr[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(hdr[offLeaderEpoch:], uint32(leaderEpoch))
	if appendTime < 0 {
		return
	}
	attrs := binary.BigEndian.Uint16(hdr[offAttributes:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(hdr[offAttributes:], attrs)
	binary.BigEndian.PutUint64(hdr[offMaxTimestamp:], uint64(appendTime))
	crc := crc32.Update(0, castagnoli, hdr[offAttributes:BatchHeaderSize])
	crc = crc32.Update(crc, castagnoli, records)
	binary.BigEndian.PutUint32(hdr[offCRC:], crc)
}
