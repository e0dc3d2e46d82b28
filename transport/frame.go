package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// FrameHeaderLen is the size of a frame's length prefix.
const FrameHeaderLen = 4

// DefaultMaxFrameBytes is the request size limit when ServerConfig leaves
// it unset: Kafka's socket.request.max.bytes default.
const DefaultMaxFrameBytes = 100 << 20

// trustedAlloc is how much ReadFrame allocates on the word of a length
// prefix alone. Beyond it the buffer grows only as bytes actually arrive,
// so a peer cannot make the broker allocate 100 MiB by sending 4 bytes.
const trustedAlloc = 64 << 10

// ErrNegativeFrameLength is returned for a length prefix with the sign bit
// set: Kafka sizes are int32, so such a stream is not Kafka framing.
var ErrNegativeFrameLength = errors.New("transport: negative frame length")

// ErrFrameTooLong is returned when asked to write a payload that a 4-byte
// signed length cannot describe.
var ErrFrameTooLong = errors.New("transport: payload longer than a frame can carry")

// FrameTooLargeError reports a frame whose declared length exceeds the
// reader's limit. The body has not been read: the reader is positioned at
// its first byte, so the caller can inspect or discard it.
type FrameTooLargeError struct {
	Size  int // declared length of the body
	Limit int // the limit it exceeded
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("transport: frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// ReadFrame reads one frame from r and returns its body. The body is read
// into buf's capacity when it fits, so the result aliases buf; otherwise a
// new slice is returned, which the caller may pass as buf next time.
// limit <= 0 means no limit beyond the format's (math.MaxInt32).
//
// Errors: io.EOF when r ends cleanly before a frame starts;
// io.ErrUnexpectedEOF when it ends inside one; ErrNegativeFrameLength;
// *FrameTooLargeError when the declared length exceeds limit, with only
// the length prefix consumed; any other read error as returned by r.
func ReadFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	// The prefix goes into buf's spare room when there is some: a local
	// array would escape through the io.Reader and cost an allocation per
	// frame. The body overwrites it.
	var hdr []byte
	if cap(buf) >= FrameHeaderLen {
		hdr = buf[:FrameHeaderLen]
	} else {
		hdr = make([]byte, FrameHeaderLen)
	}
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr))
	if size < 0 {
		return nil, ErrNegativeFrameLength
	}
	n := int(size)
	if limit > 0 && n > limit {
		return nil, &FrameTooLargeError{Size: n, Limit: limit}
	}
	return readBody(r, buf, n)
}

func readBody(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n <= cap(buf) || n <= trustedAlloc {
		if n > cap(buf) {
			buf = slices.Grow(buf[:0], n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, noEOF(err)
		}
		return b, nil
	}
	// Grow geometrically with what has arrived, not with what was promised.
	b := buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), max(len(b), trustedAlloc)))
		}
		end := min(cap(b), n)
		m, err := io.ReadFull(r, b[len(b):end])
		b = b[:len(b)+m]
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return b, nil
}

// noEOF turns a clean EOF inside a frame into the truncation it is.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends payload to dst as one frame and returns the extended
// slice. A payload longer than math.MaxInt32 bytes is a caller bug (no
// Kafka message is that large) and panics; WriteFrame returns an error
// instead.
func AppendFrame(dst, payload []byte) []byte {
	if len(payload) > math.MaxInt32 {
		panic(ErrFrameTooLong)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// WriteFrame writes payload to w as one frame. It issues two writes (the
// prefix, then the payload) so that a large payload is never copied: give
// it a buffered writer (a *bufio.Writer is used without allocating) when
// frames are small.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > math.MaxInt32 {
		return ErrFrameTooLong
	}
	var hdr []byte
	if ab, ok := w.(interface{ AvailableBuffer() []byte }); ok {
		hdr = ab.AvailableBuffer() // a bufio.Writer's spare room: no allocation
	}
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(payload)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}
