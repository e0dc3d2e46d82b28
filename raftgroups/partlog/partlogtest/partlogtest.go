package partlogtest

import (
	"encoding/binary"
	"hash/crc32"
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record to encode. A nil Key or Value is encoded as null.
type Record struct {
	Key, Value     []byte
	Headers        []Header
	TimestampDelta int64
}

// AppendRecord appends r's encoding (length-prefixed, as inside a batch).
func AppendRecord(dst []byte, r Record, offsetDelta int) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendVarBytes(body, r.Key)
	body = appendVarBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = appendVarBytes(body, []byte(h.Key))
		body = appendVarBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Batch encodes records as one uncompressed batch at base offset 0 with no
// producer id, CRC set.
func Batch(baseTimestamp int64, records ...Record) []byte {
	var raw []byte
	maxTs := baseTimestamp
	for i, r := range records {
		raw = AppendRecord(raw, r, i)
		maxTs = max(maxTs, baseTimestamp+r.TimestampDelta)
	}
	b := make([]byte, 61, 61+len(raw))
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(raw))) // length after this field
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)         // leader epoch: unset
	b[16] = 2                                              // magic
	binary.BigEndian.PutUint32(b[23:], uint32(len(records)-1))
	binary.BigEndian.PutUint64(b[27:], uint64(baseTimestamp))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)     // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff) // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(len(records)))
	b = append(b, raw...)
	SetCRC(b)
	return b
}

// Values is Batch of records with no key holding values.
func Values(baseTimestamp int64, values ...[]byte) []byte {
	recs := make([]Record, len(values))
	for i, v := range values {
		recs[i] = Record{Value: v}
	}
	return Batch(baseTimestamp, recs...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SetCRC recomputes the CRC32C of the batch at the start of b.
func SetCRC(b []byte) {
	size := 12 + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:size], castagnoli))
}

// Idempotent is Values as sent by an idempotent producer: with producer
// id, epoch and the first record's sequence number.
func Idempotent(producerID int64, epoch int16, baseSequence int32, baseTimestamp int64, values ...[]byte) []byte {
	b := Values(baseTimestamp, values...)
	binary.BigEndian.PutUint64(b[43:], uint64(producerID))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(baseSequence))
	SetCRC(b)
	return b
}
