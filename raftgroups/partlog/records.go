package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Record is one decoded record of a batch.
//
// Key, Value and header values alias memory DecodeRecords does not copy:
// the batch itself for uncompressed batches, or a buffer allocated for the
// call for compressed ones. They stay valid as long as the caller leaves the
// batch unchanged; copy them before modifying the batch. The Headers slice
// itself is reused from one record to the next: copy it to keep it past fn.
type Record struct {
	Offset    int64  // absolute offset
	Timestamp int64  // absolute; MaxTimestamp of the batch for LogAppendTime batches
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value
	Headers   []Header
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte // nil for a null value
}

// DecodeRecords decodes every record of the batch at the start of batch (any
// bytes after it are ignored) and calls fn for each, in order. Compressed
// records are inflated into at most maxDecompressed bytes; more is
// ErrDecompressedTooLarge. An error from fn stops decoding and is returned
// as is. DecodeRecords does not check the CRC: ValidateBatches does.
func DecodeRecords(batch []byte, maxDecompressed int, fn func(Record) error) error {
	_, err := DecodeRecordsCounted(batch, maxDecompressed, fn)
	return err
}

// DecodeRecordsCounted is DecodeRecords that also reports how many bytes
// decompression produced (0 for an uncompressed batch), so that a caller
// decoding several batches can share one decompression budget among them
// instead of granting each the whole of it.
func DecodeRecordsCounted(batch []byte, maxDecompressed int, fn func(Record) error) (inflated int, err error) {
	h, err := checkBatch(batch, false)
	if err != nil {
		return 0, err
	}
	data := batch[BatchHeaderSize:h.Size()]
	if c := h.Compression(); c != CodecNone {
		if data, err = decompress(c, data, maxDecompressed); err != nil {
			return 0, err
		}
		inflated = len(data)
		if int64(h.RecordCount)*minRecordSize > int64(len(data)) {
			return inflated, fmt.Errorf("%w: recordCount %d cannot fit in %d decompressed bytes", ErrCorruptBatch, h.RecordCount, len(data))
		}
	}
	var (
		rec     Record
		headers []Header
		prev    = int64(-1)
	)
	for i := int32(0); i < h.RecordCount; i++ {
		var n int
		rec, headers, n, err = decodeRecord(data, headers[:0])
		if err != nil {
			return inflated, fmt.Errorf("record %d: %w", i, err)
		}
		data = data[n:]
		delta := rec.Offset
		if delta <= prev || delta > int64(h.LastOffsetDelta) {
			return inflated, fmt.Errorf("%w: record %d: offsetDelta %d after %d, lastOffsetDelta %d", ErrCorruptBatch, i, delta, prev, h.LastOffsetDelta)
		}
		prev = delta
		rec.Offset = h.BaseOffset + delta
		if h.LogAppendTime() {
			rec.Timestamp = h.MaxTimestamp
		} else {
			rec.Timestamp += h.BaseTimestamp
		}
		if err := fn(rec); err != nil {
			return inflated, err
		}
	}
	if len(data) != 0 {
		return inflated, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorruptBatch, len(data), h.RecordCount)
	}
	return inflated, nil
}

// decodeRecord decodes the record at the start of b. It returns the record
// with Offset and Timestamp still relative (offsetDelta, timestampDelta),
// the headers slice (grown from the one passed in), and the bytes consumed.
func decodeRecord(b []byte, headers []Header) (Record, []Header, int, error) {
	var rec Record
	length, n := binary.Varint(b)
	if n <= 0 {
		return rec, headers, 0, fmt.Errorf("%w: bad length varint", ErrCorruptBatch)
	}
	if length < 0 || length > int64(len(b)-n) {
		return rec, headers, 0, fmt.Errorf("%w: length %d, %d bytes left", ErrCorruptBatch, length, len(b)-n)
	}
	d := recordDecoder{b: b[n : n+int(length)]}
	d.byte() // attributes: unused in v2
	rec.Timestamp = d.varlong("timestampDelta")
	rec.Offset = d.varint("offsetDelta")
	rec.Key = d.bytes("key", "key length")
	rec.Value = d.bytes("value", "value length")
	count := d.varint("headerCount")
	if d.err == nil && (count < 0 || count > int64(len(d.b)/2)) {
		d.fail(fmt.Errorf("%w: headerCount %d, %d bytes left", ErrCorruptBatch, count, len(d.b)))
	}
	for j := int64(0); j < count && d.err == nil; j++ {
		k := d.bytes("header key", "header key length")
		if d.err == nil && k == nil {
			d.fail(fmt.Errorf("%w: header %d: null key", ErrCorruptBatch, j))
		}
		v := d.bytes("header value", "header value length")
		headers = append(headers, Header{Key: string(k), Value: v})
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%w: %d bytes left inside a record of length %d", ErrCorruptBatch, len(d.b), length))
	}
	if d.err != nil {
		return rec, headers, 0, d.err
	}
	if count > 0 {
		rec.Headers = headers
	}
	return rec, headers, n + int(length), nil
}

// recordDecoder reads the fields of one record; the first error sticks and
// later reads return zero values.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *recordDecoder) byte() {
	if len(d.b) < 1 {
		d.fail(fmt.Errorf("%w: record truncated before attributes", ErrCorruptBatch))
		return
	}
	d.b = d.b[1:]
}

func (d *recordDecoder) varlong(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("%w: bad %s varint", ErrCorruptBatch, field))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint(field string) int64 {
	v := d.varlong(field)
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(fmt.Errorf("%w: %s %d overflows int32", ErrCorruptBatch, field, v))
		return 0
	}
	return v
}

// bytes reads a varint length and that many bytes; -1 is null (nil).
// lengthField names the length in errors; it is passed in, not built from
// field, because this runs for every key, value and header.
func (d *recordDecoder) bytes(field, lengthField string) []byte {
	n := d.varint(lengthField)
	if d.err != nil {
		return nil
	}
	if n == -1 {
		return nil
	}
	if n < -1 || n > int64(len(d.b)) {
		d.fail(fmt.Errorf("%w: %s length %d, %d bytes left", ErrCorruptBatch, field, n, len(d.b)))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

var errStopDecode = errors.New("partlog: stop")

// FindTimestamp returns the first record of the batch at the start of batch
// whose offset is at least minOffset and whose timestamp is at least ts,
// for ListOffsets by timestamp after Log.OffsetForTimestamp found the batch.
// ok is false when no record of the batch qualifies.
func FindTimestamp(batch []byte, ts, minOffset int64, maxDecompressed int) (offset, timestamp int64, ok bool, err error) {
	err = DecodeRecords(batch, maxDecompressed, func(r Record) error {
		if r.Offset >= minOffset && r.Timestamp >= ts {
			offset, timestamp, ok = r.Offset, r.Timestamp, true
			return errStopDecode
		}
		return nil
	})
	if err == errStopDecode {
		err = nil
	}
	return offset, timestamp, ok, err
}
