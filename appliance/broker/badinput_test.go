package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// Every test here sends one kind of bad input and checks three things:
// the client gets a Kafka error it can act on, nothing is written, and the
// node keeps serving (the same connection where that is possible, and
// other clients always).

// stillServes proves the node works for another client: it produces a
// record to a fresh topic over QUIC and reads it back.
func stillServes(t *testing.T, n *nodetest.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.Client(t, sdk.QUIC)
	topic := "alive-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	createTopic(ctx, t, c, topic, 1)
	if err := c.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("still here")}); err != nil {
		t.Fatalf("node no longer serves: %v", err)
	}
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		if string(r.Value) != "still here" {
			t.Errorf("read %q", r.Value)
		}
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(1))
	if err != nil {
		t.Fatal(err)
	}
}

// endOffset returns the end offset of topic/partition.
func endOffset(t *testing.T, n *nodetest.Node, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := n.Client(t, sdk.TCP).Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/%d: %v", topic, partition, o.Err)
	}
	return o.Offset
}

// apiVersionsWorks checks the connection is still in sync and usable.
func apiVersionsWorks(t *testing.T, r *rawConn) {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions after bad input: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

func createTopicWith(t *testing.T, n *nodetest.Node, topic string, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := n.Client(t, sdk.TCP).Admin().CreateTopic(ctx, 1, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestOversizedFrame(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Limits.MaxFrameBytes = 1 << 20 }))
	big := "10485760"
	createTopicWith(t, n, "big", map[string]*string{"max.message.bytes": &big})
	for _, version := range []int16{7, 9, 13} {
		r := dialRaw(t, n.Addrs().Kafka)
		req := produceRequest(version, "big", 0, makeBatch(bytes.Repeat([]byte("x"), 2<<20)))
		if version >= 13 {
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(12)
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("big")
			md.Topics = append(md.Topics, mt)
			req.Topics[0].TopicID = r.roundTrip(md).(*kmsg.MetadataResponse).Topics[0].TopicID
		}
		resp := r.roundTrip(req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: response names %d topics", version, len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != kerr.MessageTooLarge.Code || (version >= 8 && (p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "over the broker's limit"))) {
			t.Fatalf("v%d: error %d %v, want MESSAGE_TOO_LARGE with a reason", version, p.ErrorCode, p.ErrorMessage)
		}
		apiVersionsWorks(t, r)
	}
	if got := endOffset(t, n, "big", 0); got != 0 {
		t.Fatalf("oversized produce wrote: end offset %d", got)
	}
	stillServes(t, n)
}

func TestBadCRC(t *testing.T) {
	n := nodetest.Start(t)
	createTopicWith(t, n, "crc", nil)
	r := dialRaw(t, n.Addrs().Kafka)
	batch := makeBatch([]byte("one"), []byte("two"))
	batch[len(batch)-3] ^= 0xff // flip a byte of the last record
	resp := r.roundTrip(produceRequest(9, "crc", 0, batch)).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.CorruptMessage.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "crc") {
		t.Fatalf("error %d %v, want CORRUPT_MESSAGE naming the crc", p.ErrorCode, p.ErrorMessage)
	}
	// The same batch intact is accepted on the same connection.
	resp = r.roundTrip(produceRequest(9, "crc", 0, makeBatch([]byte("one"), []byte("two")))).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("valid batch after a bad one: error %d, base offset %d", p.ErrorCode, p.BaseOffset)
	}
	if got := endOffset(t, n, "crc", 0); got != 2 {
		t.Fatalf("end offset %d, want 2 (only the valid batch)", got)
	}
	stillServes(t, n)
}

func TestTruncatedFrames(t *testing.T) {
	n := nodetest.Start(t)
	t.Run("body shorter than its request", func(t *testing.T) {
		r := dialRaw(t, n.Addrs().Kafka)
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "anything"
		ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
		req.Topics = append(req.Topics, ft)
		frame := r.frame(req)
		cut := frame[:len(frame)-20]
		binary.BigEndian.PutUint32(cut, uint32(len(cut)-4))
		r.write(cut)
		body := r.readFrame(r.corr)
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("response to a truncated request does not decode: %v", err)
		}
		if resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("error %d, want INVALID_REQUEST", resp.ErrorCode)
		}
		apiVersionsWorks(t, r)
	})
	t.Run("connection closes mid-frame", func(t *testing.T) {
		r := dialRaw(t, n.Addrs().Kafka)
		r.write([]byte{0, 0, 1, 0, 0, 3, 0}) // says 256 bytes, sends 3
		r.c.(interface{ CloseWrite() error }).CloseWrite()
		r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("server did not close the truncated connection: %v", err)
		}
	})
	t.Run("header too short for a correlation id", func(t *testing.T) {
		r := dialRaw(t, n.Addrs().Kafka)
		r.write([]byte{0, 0, 0, 3, 0, 18, 0})
		r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("server kept a connection it cannot answer: %v", err)
		}
	})
	stillServes(t, n)
}

func TestUnknownAndUnsupportedRequests(t *testing.T) {
	n := nodetest.Start(t)
	r := dialRaw(t, n.Addrs().Kafka)
	errorOf := func(body []byte) int16 { return int16(binary.BigEndian.Uint16(body)) }

	// An API key Kafka does not define.
	frame := []byte{0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 77, 0, 0}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	r.write(frame)
	if code := errorOf(r.readFrame(77)); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("unknown API key: error %d, want UNSUPPORTED_VERSION", code)
	}
	apiVersionsWorks(t, r)

	// A Kafka API eddy does not serve (ElectLeaders).
	elect := kmsg.NewPtrElectLeadersRequest()
	elect.SetVersion(1)
	r.write(r.frame(elect))
	if code := errorOf(r.readFrame(r.corr)); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("unserved API: error %d, want UNSUPPORTED_VERSION", code)
	}

	// A served API at a version below eddy's range (Produce v2 carries the
	// old message format).
	r.write(r.frame(produceRequest(2, "t", 0, nil)))
	if code := errorOf(r.readFrame(r.corr)); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("Produce v2: error %d, want UNSUPPORTED_VERSION", code)
	}

	// ApiVersions newer than eddy knows gets a v0 answer listing what it
	// supports, as Kafka does, so the client can retry lower.
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(99)
	r.write(r.frame(av))
	body := r.readFrame(r.corr)
	v0 := kmsg.NewPtrApiVersionsResponse()
	if err := v0.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if v0.ErrorCode != kerr.UnsupportedVersion.Code || len(v0.ApiKeys) < 10 {
		t.Fatalf("ApiVersions v99: error %d, %d keys", v0.ErrorCode, len(v0.ApiKeys))
	}
	apiVersionsWorks(t, r)
	stillServes(t, n)
}

func TestProduceMissingTopicWithoutAutoCreate(t *testing.T) {
	off := false
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Topics.AutoCreate = &off }))
	r := dialRaw(t, n.Addrs().Kafka)
	resp := r.roundTrip(produceRequest(9, "nowhere", 0, makeBatch([]byte("x")))).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "auto-creation is off") {
		t.Fatalf("error %d %v, want UNKNOWN_TOPIC_OR_PARTITION saying auto-creation is off", p.ErrorCode, p.ErrorMessage)
	}
	// A metadata request that allows auto-creation does not create it either.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	md.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("nowhere")
	md.Topics = append(md.Topics, mt)
	mresp := r.roundTrip(md).(*kmsg.MetadataResponse)
	if mresp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata: error %d", mresp.Topics[0].ErrorCode)
	}
	if _, ok := n.Host().Meta().Topics["nowhere"]; ok {
		t.Fatal("topic was created with auto-creation off")
	}
	// Produce to a partition a topic does not have.
	createTopicWith(t, n, "one-partition", nil)
	resp = r.roundTrip(produceRequest(9, "one-partition", 5, makeBatch([]byte("x")))).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partition 5 of a 1-partition topic: error %d", p.ErrorCode)
	}
	stillServes(t, n)
}

func TestRecordOverMaxMessageBytes(t *testing.T) {
	n := nodetest.Start(t)
	limit := "1024"
	createTopicWith(t, n, "small", map[string]*string{"max.message.bytes": &limit})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.Client(t, sdk.QUIC)
	// Incompressible, so the batch stays over the limit whatever codec kgo
	// picks; max.message.bytes applies to the batch as sent.
	value := make([]byte, 2048)
	rand.Read(value)
	err := c.Produce(ctx, &kgo.Record{Topic: "small", Value: value})
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("2 KiB record into a 1 KiB topic: %v, want MESSAGE_TOO_LARGE", err)
	}
	if got := endOffset(t, n, "small", 0); got != 0 {
		t.Fatalf("oversized record was written: end offset %d", got)
	}
	if err := c.Produce(ctx, &kgo.Record{Topic: "small", Value: []byte("fits")}); err != nil {
		t.Fatalf("a small record after the large one: %v", err)
	}
	stillServes(t, n)
}
