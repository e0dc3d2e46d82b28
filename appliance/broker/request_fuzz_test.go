package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// Fuzz inputs of FuzzDecodeRequest (and of the appliance's FuzzServeFrame)
// are (key, version, rest). When the broker serves key at version, the
// frame is a valid request header for them followed by rest, which starts
// with the header's tagged fields for flexible versions: the fuzzer then
// spends its time in the bodies of every API and version. Otherwise rest
// is the whole frame, header included, so the header parser is fuzzed too.
// New entries in supported (SASL, ACLs) are covered as soon as they land.

// fuzzCorrID is the correlation id of the headers fuzzFrame writes.
const fuzzCorrID = 0x5eed

// fuzzFrame builds the request frame (without length prefix) of a fuzz input.
func fuzzFrame(key, version int16, rest []byte) []byte {
	if !servesVersion(key, version) {
		return rest
	}
	frame := make([]byte, 0, 14+len(rest))
	frame = binary.BigEndian.AppendUint16(frame, uint16(key))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, fuzzCorrID)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "fuzz"...)
	return append(frame, rest...)
}

func servesVersion(key, version int16) bool {
	r, ok := supported[key]
	return ok && version >= r.min && version <= r.max
}

// FuzzDecodeRequest runs ServeFrame's decoding of every API and version
// the broker serves: header, flexible header tags, the kmsg body, and for
// Produce the broker's own parsing of the records (batch validation, the
// plugins' record decoding, and the head scan of oversized frames). It
// asserts that nothing panics, that offsets stay inside the frame, that a
// body kmsg accepts re-encodes to a fixed point, that every error answer
// (INVALID_REQUEST) encodes and decodes for the request's type, and that
// the produce-path parsers agree with kmsg.
func FuzzDecodeRequest(f *testing.F) {
	// The checked-in corpus (testdata/fuzz/FuzzDecodeRequest, written by
	// TestWriteFuzzCorpus) holds a real request of every API and version;
	// these cover the raw-frame mode.
	f.Add(int16(-1), int16(0), []byte{})
	f.Add(int16(-1), int16(0), []byte{0, 18, 0, 3, 0, 0, 0, 1, 255, 255, 5})
	f.Add(int16(-1), int16(0), appendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1, "raw"))
	f.Fuzz(func(t *testing.T, key, version int16, rest []byte) {
		defer watchdog(10 * time.Second)()
		frame := fuzzFrame(key, version, rest)
		checkDecodeRequest(t, frame)
	})
}

func checkDecodeRequest(t *testing.T, frame []byte) {
	h, err := parseHeaderPrefix(frame)
	if err != nil {
		return
	}
	if h.bodyOffset < 10 || h.bodyOffset > len(frame) {
		t.Fatalf("body offset %d outside frame of %d bytes", h.bodyOffset, len(frame))
	}
	if !servesVersion(h.key, h.version) {
		return
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		t.Fatalf("supported API key %d is unknown to kmsg", h.key)
	}
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if err := skipHeaderTags(frame, &h); err != nil {
			checkMalformedAnswer(t, h)
			return
		}
		if h.bodyOffset > len(frame) {
			t.Fatalf("body offset %d after tags outside frame of %d bytes", h.bodyOffset, len(frame))
		}
	}
	body := frame[h.bodyOffset:]
	if h.key == 0 {
		checkProduceHead(t, body, h.version, nil)
	}
	orig := slices.Clone(body)
	if err := req.ReadFrom(body); err != nil {
		checkMalformedAnswer(t, h)
		return
	}
	if !bytes.Equal(orig, body) {
		t.Fatal("decoding modified the frame")
	}
	// One re-encoding is a fixed point: what the broker decoded is what a
	// client meant, with nothing lost or invented.
	enc := req.AppendTo(nil)
	again := kmsg.RequestForKey(h.key)
	again.SetVersion(h.version)
	if err := again.ReadFrom(enc); err != nil {
		t.Fatalf("%s v%d: re-encoded request does not decode: %v", kmsg.NameForKey(h.key), h.version, err)
	}
	if enc2 := again.AppendTo(nil); !bytes.Equal(enc, enc2) {
		t.Fatalf("%s v%d: encoding is not a fixed point:\n%x\n%x", kmsg.NameForKey(h.key), h.version, enc, enc2)
	}
	if p, ok := req.(*kmsg.ProduceRequest); ok {
		checkProduceHead(t, body, h.version, p)
		checkProduceRecords(t, p)
	}
}

// checkMalformedAnswer builds the INVALID_REQUEST answer malformed sends
// and checks a client can decode it.
func checkMalformedAnswer(t *testing.T, h requestHeader) {
	resp := kmsg.ResponseForKey(h.key)
	setTopLevelError(resp, 42, "eddy could not decode this request: fuzz")
	resp.SetVersion(h.version)
	enc := resp.AppendTo(nil)
	back := kmsg.ResponseForKey(h.key)
	back.SetVersion(h.version)
	if err := back.ReadFrom(enc); err != nil {
		t.Fatalf("%s v%d: INVALID_REQUEST answer does not decode: %v", kmsg.NameForKey(h.key), h.version, err)
	}
}

// checkProduceHead runs scanProduceHead, which reads the head of a produce
// frame too large to read whole, on every prefix length the fuzzer picks
// through the body. With the full decode at hand it must agree with it.
func checkProduceHead(t *testing.T, body []byte, version int16, full *kmsg.ProduceRequest) {
	acks, topics := scanProduceHead(body, version)
	if full == nil {
		return
	}
	var want []headTopic
	for _, rt := range full.Topics {
		if rt.Topic == "" && rt.TopicID == [16]byte{} {
			continue
		}
		ht := headTopic{topic: rt.Topic, topicID: rt.TopicID}
		if version < 13 {
			ht.topicID = [16]byte{}
		} else {
			ht.topic = ""
		}
		for _, p := range rt.Partitions {
			ht.partitions = append(ht.partitions, p.Partition)
		}
		want = append(want, ht)
	}
	if acks != full.Acks {
		t.Fatalf("produce v%d head scan: acks %d, kmsg %d", version, acks, full.Acks)
	}
	if !sameHeadTopics(topics, want, false) {
		t.Fatalf("produce v%d head scan: %+v, kmsg %+v", version, topics, want)
	}
	// A cut anywhere yields a prefix of the same names.
	for _, cut := range []int{len(body) / 2, len(body) - 1, 20} {
		if cut < 0 || cut > len(body) {
			continue
		}
		_, got := scanProduceHead(body[:cut], version)
		if !sameHeadTopics(got, want, true) {
			t.Fatalf("produce v%d head scan of %d/%d bytes: %+v, kmsg %+v", version, cut, len(body), got, want)
		}
	}
}

func sameHeadTopics(got, want []headTopic, prefix bool) bool {
	if len(got) > len(want) || (!prefix && len(got) != len(want)) {
		return false
	}
	for i, g := range got {
		w := want[i]
		if g.topic != w.topic || g.topicID != w.topicID {
			return false
		}
		if len(g.partitions) > len(w.partitions) || (!prefix && len(g.partitions) != len(w.partitions)) {
			return false
		}
		if !slices.Equal(g.partitions, w.partitions[:len(g.partitions)]) {
			return false
		}
	}
	return true
}

// checkProduceRecords runs what proposeBatches does with each partition's
// records before proposing them: validation, then (for topics with a
// validator or partitioner) decoding for the plugins.
func checkProduceRecords(t *testing.T, req *kmsg.ProduceRequest) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			headers, err := partlog.ValidateBatches(rp.Records, 1<<20)
			if err != nil || len(headers) == 0 {
				continue
			}
			total, count := 0, 0
			for _, h := range headers {
				total += h.Size()
				count += int(h.RecordCount)
			}
			if total != len(rp.Records) {
				t.Fatalf("validated batches cover %d of %d bytes", total, len(rp.Records))
			}
			records, err := pluginRecords(rp.Records, headers)()
			if err != nil {
				continue
			}
			if len(records) != count {
				t.Fatalf("plugins see %d records, batch headers say %d", len(records), count)
			}
		}
	}
}

// watchdog ends the fuzz process with every goroutine's stack when one
// input runs longer than limit: Go's fuzzer has no per-input timeout, and
// a worker stuck on an input otherwise just stops reporting execs. The
// coordinator saves the input that killed the worker as a failure.
func watchdog(limit time.Duration) (stop func() bool) {
	return time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("fuzz input still running after %s (a hang)\n%s", limit, buf))
	}).Stop
}

// TestTagCountIsBounded: a flexible request whose tagged-field count
// (2^32-1 here) runs past the bytes must fail at once. kmsg v1.15.0 as
// published loops over the whole count, which kept a core busy for over
// ten minutes per 24-byte request; eddy builds with a patched copy
// (third_party/kmsg).
func TestTagCountIsBounded(t *testing.T) {
	body := []byte{2, 0} // one topic, null name
	body = append(body, make([]byte, 16)...)
	body = append(body, 0xff, 0xff, 0xff, 0xff, 0x0f) // its tag count
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	start := time.Now()
	if err := req.ReadFrom(body); err == nil {
		t.Fatal("a truncated request decoded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("decoding a 23-byte request took %s", d)
	}
}

// TestArrayLengthAllocationIsBounded: an array length the bytes cannot
// back must not be allocated up front. A 1 MiB Fetch request declaring a
// million topics, the first with a million partitions, made kmsg v1.15.0
// as published allocate 136 MiB; eddy's copy (third_party/kmsg) allocates
// as elements decode.
func TestArrayLengthAllocationIsBounded(t *testing.T) {
	const n = 1 << 20
	body := make([]byte, 0, n+32)
	body = binary.BigEndian.AppendUint32(body, 0xffffffff) // replica id
	body = binary.BigEndian.AppendUint32(body, 0)          // max wait
	body = binary.BigEndian.AppendUint32(body, 0)          // min bytes
	body = binary.BigEndian.AppendUint32(body, 0)          // max bytes
	body = append(body, 0)                                 // isolation level
	body = binary.BigEndian.AppendUint32(body, n)          // topics
	body = binary.BigEndian.AppendUint16(body, 0)          // topic ""
	body = binary.BigEndian.AppendUint32(body, n-8)        // partitions
	body = append(body, make([]byte, n-len(body))...)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(4)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := req.ReadFrom(body)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a request whose arrays run past its bytes decoded")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 48<<20 {
		t.Fatalf("decoding a %d-byte request allocated %d MiB", len(body), got>>20)
	}
}
