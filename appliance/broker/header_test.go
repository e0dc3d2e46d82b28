package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzParseHeader checks the header parser never panics and never reports
// a body offset outside the frame.
func FuzzParseHeader(f *testing.F) {
	for _, req := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest()} {
		req.SetVersion(req.MaxVersion())
		f.Add(appendRequest(nil, req, 7, "fuzz"))
	}
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 255, 255, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeaderPrefix(b)
		if err != nil {
			return
		}
		if h.bodyOffset > len(b) {
			t.Fatalf("body offset %d beyond frame of %d", h.bodyOffset, len(b))
		}
		if err := skipHeaderTags(b, &h); err == nil && h.bodyOffset > len(b) {
			t.Fatalf("body offset %d beyond frame of %d after tags", h.bodyOffset, len(b))
		}
	})
}

func TestParseHeaderRoundTrip(t *testing.T) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12) // flexible: header v2
	frame := appendRequest(nil, req, 42, "client-1")
	h, err := parseHeaderPrefix(frame)
	if err != nil {
		t.Fatal(err)
	}
	if h.key != 3 || h.version != 12 || h.corrID != 42 || h.clientID != "client-1" {
		t.Fatalf("got %+v", h)
	}
	if err := skipHeaderTags(frame, &h); err != nil {
		t.Fatal(err)
	}
	got := kmsg.NewPtrMetadataRequest()
	got.SetVersion(12)
	if err := got.ReadFrom(frame[h.bodyOffset:]); err != nil {
		t.Fatalf("body does not parse after header: %v", err)
	}
}

// appendRequest encodes req as a request frame body (header and body, no
// length prefix), as a client would send it.
func appendRequest(dst []byte, req kmsg.Request, corrID int32, clientID string) []byte {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, corrID)
	return append(dst, frame[4:]...)
}
