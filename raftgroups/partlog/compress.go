package partlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// xerialMagic starts snappy data framed by Java clients (snappy-java's
// SnappyOutputStream); franz-go and sarama send a raw snappy block instead.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// xerialHeaderSize is the magic plus two int32s (version, compatible version).
const xerialHeaderSize = 16

// A zstd frame declares its window, and the decoder allocates that much
// history whatever the frame holds: a 109-byte batch declaring 16 MiB made
// it allocate 17 MiB (found by FuzzBatchInvariants). Decoders are built
// with a window cap, so a frame's history costs at most about the larger
// of the decompression limit and zstdSmallWindow. Kafka clients stream
// with windows of 2 MiB or less at their default levels.
const (
	zstdSmallWindow = 4 << 20
	zstdMaxWindow   = 64 << 20
)

// Decoders are pooled because building one allocates far more than a typical
// batch holds; each is used by one goroutine at a time.
var (
	gzipPool sync.Pool // *gzip.Reader
	lz4Pool  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	// zstdPools hold decoders capped at zstdSmallWindow and at
	// zstdMaxWindow.
	zstdPools [2]sync.Pool // *zstd.Decoder
)

// zstdErr reports a frame whose window is over the decoder's cap as too
// large to decompress, which is what it is, and anything else as corrupt
// (nil stays nil).
func zstdErr(err error, limit int) error {
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return fmt.Errorf("%w: a zstd frame declares a window larger than the broker decodes for a limit of %d bytes", ErrDecompressedTooLarge, limit)
	}
	return wrapCodecErr(CodecZstd, err)
}

// zstdDecoder returns a pooled decoder whose window cap suits limit, and
// the pool to return it to.
func zstdDecoder(limit int) (*zstd.Decoder, *sync.Pool, error) {
	pool, window := &zstdPools[0], uint64(zstdSmallWindow)
	if limit > zstdSmallWindow {
		pool, window = &zstdPools[1], zstdMaxWindow
	}
	if dec, ok := pool.Get().(*zstd.Decoder); ok {
		return dec, pool, nil
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window))
	if err != nil {
		return nil, nil, fmt.Errorf("partlog: zstd decoder: %w", err)
	}
	return dec, pool, nil
}

// decompress inflates the records section of a batch compressed with c into
// a fresh buffer of at most limit bytes. It never allocates more than about
// limit for the output, whatever sizes the compressed data claims.
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	switch c {
	case CodecGzip:
		return decompressGzip(src, limit)
	case CodecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decompressXerial(src, limit)
		}
		return decompressSnappyBlock(src, limit)
	case CodecLZ4:
		zr := lz4Pool.Get().(*lz4.Reader)
		br := bytes.NewReader(src)
		zr.Reset(br)
		out, err := readCapped(zr, 4*len(src), limit)
		zr.Reset(nil)
		lz4Pool.Put(zr)
		return out, wrapCodecErr(c, err)
	case CodecZstd:
		dec, pool, err := zstdDecoder(limit)
		if err != nil {
			return nil, err
		}
		if err := dec.Reset(bytes.NewReader(src)); err != nil {
			pool.Put(dec)
			return nil, zstdErr(err, limit)
		}
		out, err := readCapped(dec, 4*len(src), limit)
		_ = dec.Reset(nil) // drop the reference to src before pooling
		pool.Put(dec)
		return out, zstdErr(err, limit)
	case CodecNone:
		return src, nil
	}
	return nil, fmt.Errorf("%w: codec id %d", ErrUnsupportedCompression, int8(c))
}

func decompressGzip(src []byte, limit int) ([]byte, error) {
	br := bytes.NewReader(src)
	zr, _ := gzipPool.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(br)
	} else {
		err = zr.Reset(br)
	}
	if err != nil {
		return nil, wrapCodecErr(CodecGzip, err)
	}
	out, err := readCapped(zr, 4*len(src), limit)
	gzipPool.Put(zr)
	return out, wrapCodecErr(CodecGzip, err)
}

func decompressSnappyBlock(src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, wrapCodecErr(CodecSnappy, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: snappy block declares %d bytes, limit %d", ErrDecompressedTooLarge, n, limit)
	}
	out, err := snappy.Decode(make([]byte, n), src)
	if err != nil {
		return nil, wrapCodecErr(CodecSnappy, err)
	}
	return out, nil
}

// decompressXerial walks the chunks twice: once to add up their declared
// sizes against the limit, once to decode them into one exact buffer.
func decompressXerial(src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("%w: snappy: xerial header truncated", ErrCorruptBatch)
	}
	total := 0
	for p := xerialHeaderSize; p < len(src); {
		chunk, next, err := xerialChunk(src, p)
		if err != nil {
			return nil, err
		}
		n, err := snappy.DecodedLen(chunk)
		if err != nil {
			return nil, wrapCodecErr(CodecSnappy, err)
		}
		if n > limit-total {
			return nil, fmt.Errorf("%w: xerial snappy chunks declare more than %d bytes", ErrDecompressedTooLarge, limit)
		}
		total += n
		p = next
	}
	out := make([]byte, total)
	w := 0
	for p := xerialHeaderSize; p < len(src); {
		chunk, next, _ := xerialChunk(src, p)
		n, _ := snappy.DecodedLen(chunk)
		d, err := snappy.Decode(out[w:w+n], chunk)
		if err != nil {
			return nil, wrapCodecErr(CodecSnappy, err)
		}
		if len(d) != n {
			return nil, fmt.Errorf("%w: snappy: chunk decoded to %d bytes, declared %d", ErrCorruptBatch, len(d), n)
		}
		w += n
		p = next
	}
	return out, nil
}

func xerialChunk(src []byte, p int) (chunk []byte, next int, err error) {
	if len(src)-p < 4 {
		return nil, 0, fmt.Errorf("%w: snappy: xerial chunk length truncated at byte %d", ErrCorruptBatch, p)
	}
	n := binary.BigEndian.Uint32(src[p:])
	if uint64(n) > uint64(len(src)-p-4) {
		return nil, 0, fmt.Errorf("%w: snappy: xerial chunk of %d bytes at byte %d runs past the data", ErrCorruptBatch, n, p)
	}
	return src[p+4 : p+4+int(n)], p + 4 + int(n), nil
}

// readCapped reads r to EOF into a buffer that grows geometrically from hint
// but never beyond limit; more data than limit is ErrDecompressedTooLarge.
func readCapped(r io.Reader, hint, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(limit, max(hint, 1024)))
	stalls := 0
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				var probe [1]byte
				n, err := io.ReadFull(r, probe[:])
				if n > 0 {
					return nil, fmt.Errorf("%w: more than %d bytes", ErrDecompressedTooLarge, limit)
				}
				if err == io.EOF {
					return buf, nil
				}
				return nil, err
			}
			grown := make([]byte, len(buf), min(limit, 2*cap(buf)+1024))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if stalls++; stalls > 100 {
				return nil, io.ErrNoProgress
			}
		} else {
			stalls = 0
		}
	}
}

func wrapCodecErr(c Codec, err error) error {
	if err == nil || errors.Is(err, ErrDecompressedTooLarge) || errors.Is(err, ErrCorruptBatch) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrCorruptBatch, c, err)
}
