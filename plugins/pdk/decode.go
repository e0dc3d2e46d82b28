package pdk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// minRecordLen is the smallest encoded record: offset delta, timestamp,
// key length, value length and header count.
const minRecordLen = 8 + 8 + 4 + 4 + 4

// errTruncated: a length in the batch runs past its end.
var errTruncated = errors.New("batch truncated or a length runs past its end")

// batchReader walks a batch encoded as abi.AppendBatch does, without
// copying or allocating: the slices it stores in a Record alias the block,
// and Headers reuses the Record's backing array. It is pdk's own walker
// rather than abi.BatchReader because that one allocates a string per
// header key; fuzz tests keep the two in agreement.
type batchReader struct {
	buf   []byte
	count int
	read  int
	err   error
}

// reset starts reading block, checking its count against its size.
func (b *batchReader) reset(block []byte) error {
	*b = batchReader{}
	if len(block) < 4 {
		b.err = errTruncated
		return b.err
	}
	count := binary.LittleEndian.Uint32(block)
	if uint64(count)*minRecordLen > uint64(len(block)-4) {
		b.err = fmt.Errorf("batch claims %d records in %d bytes", count, len(block))
		return b.err
	}
	b.buf, b.count = block[4:], int(count)
	return nil
}

// next decodes the next record into r, returning false at the end or on an
// error (see done).
func (b *batchReader) next(r *Record) bool {
	if b.err != nil || b.read >= b.count {
		return false
	}
	if len(b.buf) < minRecordLen {
		return b.fail()
	}
	r.Index = b.read
	r.OffsetDelta = int64(binary.LittleEndian.Uint64(b.buf))
	r.Timestamp = int64(binary.LittleEndian.Uint64(b.buf[8:]))
	b.buf = b.buf[16:]
	var ok bool
	if r.Key, ok = b.nullable(); !ok {
		return b.fail()
	}
	if r.Value, ok = b.nullable(); !ok {
		return b.fail()
	}
	if len(b.buf) < 4 {
		return b.fail()
	}
	n := binary.LittleEndian.Uint32(b.buf)
	b.buf = b.buf[4:]
	if uint64(n)*8 > uint64(len(b.buf)) {
		return b.fail()
	}
	r.Headers = r.Headers[:0]
	for range n {
		if len(b.buf) < 4 {
			return b.fail()
		}
		kl := binary.LittleEndian.Uint32(b.buf)
		b.buf = b.buf[4:]
		if uint64(kl) > uint64(len(b.buf)) {
			return b.fail()
		}
		k := b.buf[:kl:kl]
		b.buf = b.buf[kl:]
		v, ok := b.nullable()
		if !ok {
			return b.fail()
		}
		r.Headers = append(r.Headers, Header{Key: k, Value: v})
	}
	b.read++
	return true
}

func (b *batchReader) fail() bool {
	b.err = errTruncated
	return false
}

func (b *batchReader) nullable() ([]byte, bool) {
	if len(b.buf) < 4 {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b.buf)
	b.buf = b.buf[4:]
	if n == 0xFFFFFFFF {
		return nil, true
	}
	if uint64(n) > uint64(len(b.buf)) {
		return nil, false
	}
	v := b.buf[:n:n]
	b.buf = b.buf[n:]
	return v, true
}

// done reports why reading stopped: nil after the last record of a block
// that has no bytes left over.
func (b *batchReader) done() error {
	if b.err != nil {
		return fmt.Errorf("record %d: %w", b.read, b.err)
	}
	if len(b.buf) != 0 {
		return fmt.Errorf("%d bytes after the last of %d records", len(b.buf), b.count)
	}
	return nil
}
