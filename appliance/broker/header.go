package broker

import (
	"encoding/binary"
	"errors"
)

var errShortHeader = errors.New("request header is truncated")

// requestHeader is a Kafka request header (v1, or v2 with tagged fields for
// flexible requests).
type requestHeader struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
	// bodyOffset is where the request body starts in the frame; it is only
	// known once we know whether the request is flexible.
	bodyOffset int
}

// parseHeaderPrefix reads the fixed part of the header: key, version and
// correlation id (8 bytes), and the client id. It does not skip tagged
// fields; see skipHeaderTags.
func parseHeaderPrefix(b []byte) (requestHeader, error) {
	if len(b) < 10 {
		return requestHeader{}, errShortHeader
	}
	h := requestHeader{
		key:     int16(binary.BigEndian.Uint16(b[0:])),
		version: int16(binary.BigEndian.Uint16(b[2:])),
		corrID:  int32(binary.BigEndian.Uint32(b[4:])),
	}
	n := int(int16(binary.BigEndian.Uint16(b[8:])))
	pos := 10
	if n > 0 {
		if len(b) < pos+n {
			return h, errShortHeader
		}
		h.clientID = string(b[pos : pos+n])
		pos += n
	}
	h.bodyOffset = pos
	return h, nil
}

// skipHeaderTags moves bodyOffset past the header's tagged fields (request
// header v2).
func skipHeaderTags(b []byte, h *requestHeader) error {
	pos := h.bodyOffset
	count, n := binary.Uvarint(b[pos:])
	if n <= 0 {
		return errShortHeader
	}
	pos += n
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b[pos:]); n <= 0 {
			return errShortHeader
		}
		pos += n
		size, n := binary.Uvarint(b[pos:])
		if n <= 0 || size > uint64(len(b)-pos-n) {
			return errShortHeader
		}
		pos += n + int(size)
	}
	h.bodyOffset = pos
	return nil
}
