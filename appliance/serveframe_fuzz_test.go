package appliance_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/broker"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/transport"
)

// FuzzServeFrame drives a real single-node broker (Raft, partition logs,
// group coordinators) through Broker.ServeFrame, the way the transport
// does, with arbitrary frames. Inputs are (key, version, rest) as in
// appliance/broker's FuzzDecodeRequest: for an API and version the node
// advertises, rest follows a valid request header, otherwise rest is the
// whole frame. The seed corpus in testdata/fuzz/FuzzServeFrame holds a
// real request of every API and version (written by appliance/broker's
// TestWriteFuzzCorpus).
//
// For every input it asserts: no panic, in ServeFrame or its Responder;
// the Responder returns within its context's deadline plus a grace; the
// answer is a response frame with the request's correlation id that a
// Kafka client can decode for the request's API and version (or the bare
// UNSUPPORTED_VERSION answer), or a connection failure (an error), and
// "no response" only for Produce (acks=0); the frame's memory is not used
// after ServeFrame returned (it is overwritten then, as the transport
// reuses its buffer). After the input, on the same connection, ApiVersions
// and Metadata still work.
func FuzzServeFrame(f *testing.F) {
	if os.Getenv("EDDY_TEST_LOG") == "" {
		// Every malformed input logs a warning: keep the fuzzer's memory
		// and output for the findings.
		f.Setenv("EDDY_TEST_LOG", "error")
	}
	n := nodetest.Start(f, nodetest.WithConfig(func(c *nodecfg.Config) {
		// One shard per auto-created topic keeps the node quick.
		c.Topics.DefaultPartitions = 1
	}))
	// ApiVersions v3 is all it takes to learn the rest.
	h := &serveHarness{b: appliance.BrokerOf(n.Node), n: n, versions: map[int16][2]int16{18: {3, 3}}}
	h.versions = h.advertised(f)
	h.ensureTopic(f)

	f.Add(int16(-1), int16(0), []byte{})
	f.Add(int16(-1), int16(0), []byte{0, 3, 0, 12, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, key, version int16, rest []byte) {
		defer watchdog(30 * time.Second)()
		frame := h.frame(key, version, rest)
		if h.tooExpensive(frame) {
			return
		}
		conn := h.conn()
		if _, open := h.serve(t, conn, frame, true); !open {
			conn = h.conn() // the broker closed the connection: it must serve a new one
		}
		h.stillServes(t, conn)
		h.tidy(t)
	})
}

type serveHarness struct {
	b        *broker.Broker
	n        *nodetest.Node
	versions map[int16][2]int16
	conns    uint64
}

// fuzzTopic is the topic the seeds produce to and fetch from.
const fuzzTopic = "fuzz"

// maxFuzzPartitions bounds the partitions one input may create: each is a
// Raft shard, and the fuzzer would otherwise fill the node with thousands
// of them (the per-topic cap, meta.MaxPartitions, has its own tests).
const maxFuzzPartitions = 8

func (h *serveHarness) conn() *transport.ConnInfo {
	h.conns++
	c := &transport.ConnInfo{
		Transport:  "tcp",
		Listener:   broker.ListenerKafka,
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		LocalAddr:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092},
		ID:         1<<40 + h.conns,
	}
	// As the node's listeners do for a connection without SASL.
	c.SetPrincipal(broker.AnonymousPrincipal)
	return c
}

// frame builds the frame of a fuzz input (see FuzzServeFrame).
func (h *serveHarness) frame(key, version int16, rest []byte) []byte {
	r, ok := h.versions[key]
	if !ok || version < r[0] || version > r[1] {
		return append([]byte(nil), rest...)
	}
	frame := make([]byte, 0, 14+len(rest))
	frame = binary.BigEndian.AppendUint16(frame, uint16(key))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, 0x5eed)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "fuzz"...)
	return append(frame, rest...)
}

// decode decodes a frame as the broker would, for the harness's own
// checks; ok is false when it does not decode.
func decode(frame []byte) (key, version int16, corrID int32, req kmsg.Request, ok bool) {
	if len(frame) < 10 {
		return 0, 0, 0, nil, false
	}
	key = int16(binary.BigEndian.Uint16(frame))
	version = int16(binary.BigEndian.Uint16(frame[2:]))
	corrID = int32(binary.BigEndian.Uint32(frame[4:]))
	pos := 10
	if n := int(int16(binary.BigEndian.Uint16(frame[8:]))); n > 0 {
		pos += n
	}
	req = kmsg.RequestForKey(key)
	if req == nil || pos > len(frame) {
		return key, version, corrID, nil, false
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		tags, n := binary.Uvarint(frame[pos:])
		if n <= 0 {
			return key, version, corrID, nil, false
		}
		pos += n
		for range tags {
			if _, n = binary.Uvarint(frame[pos:]); n <= 0 {
				return key, version, corrID, nil, false
			}
			pos += n
			size, n := binary.Uvarint(frame[pos:])
			if n <= 0 || size > uint64(len(frame)-pos-n) {
				return key, version, corrID, nil, false
			}
			pos += n + int(size)
		}
	}
	if err := req.ReadFrom(append([]byte(nil), frame[pos:]...)); err != nil {
		return key, version, corrID, nil, false
	}
	return key, version, corrID, req, true
}

// tooExpensive reports inputs that would create more than
// maxFuzzPartitions partitions.
func (h *serveHarness) tooExpensive(frame []byte) bool {
	_, _, _, req, ok := decode(frame)
	if !ok {
		return false
	}
	parts := 0
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		for _, t := range r.Topics {
			parts += max(int(t.NumPartitions), len(t.ReplicaAssignment), 1)
		}
	case *kmsg.CreatePartitionsRequest:
		for _, t := range r.Topics {
			parts += max(int(t.Count), len(t.Assignment))
		}
	}
	return parts > maxFuzzPartitions
}

// serve hands frame to the broker and checks the answer; it returns the
// response body after the response header (nil without one), and whether
// the connection stays open.
func (h *serveHarness) serve(t testing.TB, conn *transport.ConnInfo, frame []byte, poison bool) (body []byte, open bool) {
	t.Helper()
	key, version, corrID, req, decoded := decode(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	respond := h.b.ServeFrame(ctx, conn, frame)
	if poison {
		for i := range frame {
			frame[i] = 0xAA
		}
	}
	if respond == nil {
		if key != 0 {
			t.Fatalf("no Responder for %s v%d", kmsg.NameForKey(key), version)
		}
		return nil, true
	}
	type result struct {
		payload []byte
		err     error
	}
	done := make(chan result, 1)
	go func() {
		p, err := respond(ctx)
		done <- result{p, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(3*time.Second + 10*time.Second):
		panic(fmt.Sprintf("Responder of %s v%d still running 10s after its context ended\n%s", kmsg.NameForKey(key), version, stacks()))
	}
	open = true
	if res.err != nil {
		if res.payload == nil || !errors.Is(res.err, transport.ErrCloseAfterResponse) {
			return nil, false // a connection failure is a clean answer to any input
		}
		open = false // a last response, then the connection closes
	}
	if res.payload == nil {
		if key != 0 || (decoded && req.(*kmsg.ProduceRequest).Acks != 0) {
			t.Fatalf("%s v%d: no response and no error", kmsg.NameForKey(key), version)
		}
		return nil, true
	}
	p := res.payload
	if len(p) < 4 || int32(binary.BigEndian.Uint32(p)) != corrID {
		t.Fatalf("%s v%d: response %x does not carry correlation id %d", kmsg.NameForKey(key), version, p[:min(len(p), 8)], corrID)
	}
	r, served := h.versions[key]
	if !served || version < r[0] || version > r[1] {
		switch {
		case key == 18: // ApiVersions answers with v0 and the versions it serves
			resp := kmsg.NewPtrApiVersionsResponse()
			if err := resp.ReadFrom(p[4:]); err != nil || resp.ErrorCode != 35 {
				t.Fatalf("ApiVersions v%d: answer %x (%v)", version, p, err)
			}
		case len(p) != 6 || binary.BigEndian.Uint16(p[4:]) != 35:
			t.Fatalf("unsupported %d v%d: answer %x, want UNSUPPORTED_VERSION", key, version, p)
		}
		return nil, open
	}
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	body = p[4:]
	if resp.IsFlexible() && key != 18 {
		if len(body) == 0 || body[0] != 0 {
			t.Fatalf("%s v%d: response header tags %x", kmsg.NameForKey(key), version, body[:min(len(body), 1)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: response does not decode: %v", kmsg.NameForKey(key), version, err)
	}
	return body, open
}

// request encodes a valid request frame.
func request(req kmsg.Request, corrID int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz-check")).AppendRequest(nil, req, corrID)[4:]
}

// stillServes checks that the connection and the broker work after the
// fuzz input.
func (h *serveHarness) stillServes(t testing.TB, conn *transport.ConnInfo) {
	t.Helper()
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	body, _ := h.serve(t, conn, request(av, 1001), false)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if body == nil || resp.ReadFrom(body) != nil || resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions after the input: %x", body)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(fuzzTopic)
	md.Topics = append(md.Topics, mt)
	if body, _ := h.serve(t, conn, request(md, 1002), false); body == nil {
		t.Fatal("Metadata after the input: no response")
	}
}

// advertised asks the broker which versions it serves.
func (h *serveHarness) advertised(t testing.TB) map[int16][2]int16 {
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	body, _ := h.serve(t, h.conn(), request(av, 1), false)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	out := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}

// ensureTopic (re)creates the topic the seeds use, which an input may
// have deleted.
func (h *serveHarness) ensureTopic(t testing.TB) {
	if _, ok := h.n.Host().Meta().Topics[fuzzTopic]; ok {
		return
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(7)
	ct.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fuzzTopic, 1, 1
	ct.Topics = append(ct.Topics, rt)
	h.serve(t, h.conn(), request(ct, 2), false)
}

// tidy deletes the topics inputs created once there are many, so the
// node stays as quick at the end of a long run as at its start.
func (h *serveHarness) tidy(t testing.TB) {
	topics := h.n.Host().Meta().Topics
	if len(topics) > 16 {
		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.SetVersion(4)
		dt.TimeoutMillis = 5000
		for name := range topics {
			if name != fuzzTopic {
				dt.TopicNames = append(dt.TopicNames, name)
			}
		}
		h.serve(t, h.conn(), request(dt, 3), false)
	}
	h.ensureTopic(t)
}

// watchdog ends the fuzz process with every goroutine's stack when one
// input runs longer than limit: Go's fuzzer has no per-input timeout, and
// a worker stuck on an input otherwise just stops reporting execs. The
// coordinator saves the input that killed the worker as a failure.
func watchdog(limit time.Duration) (stop func() bool) {
	return time.AfterFunc(limit, func() {
		panic(fmt.Sprintf("fuzz input still running after %s (a hang)\n%s", limit, stacks()))
	}).Stop
}

func stacks() []byte {
	buf := make([]byte, 4<<20)
	return buf[:runtime.Stack(buf, true)]
}
