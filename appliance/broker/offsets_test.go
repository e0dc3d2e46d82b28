package broker_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// produceTo writes values to one partition, with the given timestamps.
func produceTo(t *testing.T, c *sdk.Client, topic string, partition int32, ts []time.Time, values ...[]byte) {
	t.Helper()
	cl, err := c.NewKgo(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: v}
		if ts != nil {
			recs[i].Timestamp = ts[i]
		}
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRecordsAndListOffsets(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	c := n.Client(t, sdk.QUIC)
	createTopic(ctx, t, c, "trim", 1)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	ts := make([]time.Time, 100)
	vals := make([][]byte, 100)
	for i := range ts {
		ts[i] = base.Add(time.Duration(i) * time.Second)
		vals[i] = []byte{byte(i)}
	}
	produceTo(t, c, "trim", 0, ts, vals...)
	adm := c.Admin()

	// By timestamp: the first record at or after the time asked for.
	listed, err := adm.ListOffsetsAfterMilli(ctx, base.Add(42500*time.Millisecond).UnixMilli(), "trim")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := listed.Lookup("trim", 0); o.Offset != 43 || o.Timestamp != ts[43].UnixMilli() {
		t.Fatalf("offset for time 42.5s: %d at %d, want 43 at %d", o.Offset, o.Timestamp, ts[43].UnixMilli())
	}
	listed, _ = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "trim")
	if o, _ := listed.Lookup("trim", 0); o.Offset != 100 && o.Offset != -1 {
		t.Fatalf("offset after the last record: %d", o.Offset)
	}

	var offs kadm.Offsets
	offs.AddOffset("trim", 0, 50, -1)
	dr, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if r := dr["trim"][0]; r.Err != nil || r.LowWatermark != 50 {
		t.Fatalf("delete records: %v, low watermark %d", r.Err, r.LowWatermark)
	}
	starts, _ := adm.ListStartOffsets(ctx, "trim")
	if o, _ := starts.Lookup("trim", 0); o.Offset != 50 {
		t.Fatalf("start offset %d after deleting below 50", o.Offset)
	}
	// Reading from the beginning now starts at 50.
	var first int64 = -1
	err = c.Consume(ctx, "trim", func(r *kgo.Record) error {
		first = r.Offset
		return sdk.ErrStop
	}, sdk.FromBeginning())
	if err != nil || first != 50 {
		t.Fatalf("first record read %d (%v), want 50", first, err)
	}
	// A fetch below the start is out of range.
	fr := fetchOnce(t, n, "trim", 0, 10, 1<<20)
	if fr.ErrorCode != kerr.OffsetOutOfRange.Code || fr.LogStartOffset != 50 || fr.HighWatermark != 100 {
		t.Fatalf("fetch at 10: error %d, log start %d, high watermark %d", fr.ErrorCode, fr.LogStartOffset, fr.HighWatermark)
	}
	offs = nil
	offs.AddOffset("trim", 0, 500, -1)
	dr, _ = adm.DeleteRecords(ctx, offs)
	if r := dr["trim"][0]; !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond the end: %v", r.Err)
	}
}

// fetchOnce sends one Fetch for one partition over a raw connection.
func fetchOnce(t *testing.T, n *nodetest.Node, topic string, partition int32, offset int64, partMax int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 50<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, offset, partMax
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := dialRaw(t, n.Addrs().Kafka).roundTrip(req).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0]
}

func TestFetchReturnsOversizedFirstBatch(t *testing.T) {
	n := nodetest.Start(t)
	c := n.Client(t, sdk.TCP)
	createTopic(ctxT(t), t, c, "kip74", 1)
	big := make([]byte, 64<<10)
	rand.Read(big)
	produceTo(t, c, "kip74", 0, nil, big)
	fr := fetchOnce(t, n, "kip74", 0, 0, 1024)
	if fr.ErrorCode != 0 || len(fr.RecordBatches) < len(big) {
		t.Fatalf("fetch with a 1 KiB limit of a 64 KiB batch: error %d, %d bytes; the whole batch must come back", fr.ErrorCode, len(fr.RecordBatches))
	}
}

// TestFetchLongPoll: a fetch that finds nothing waits, and returns the
// record produced while it waits (not an empty answer at its deadline).
func TestFetchLongPoll(t *testing.T) {
	n := nodetest.Start(t)
	c := n.Client(t, sdk.TCP)
	createTopic(ctxT(t), t, c, "poll", 1)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 30000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "poll"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	r := dialRaw(t, n.Addrs().Kafka)
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- r.roundTrip(req).(*kmsg.FetchResponse) }()
	time.Sleep(300 * time.Millisecond)
	produceTo(t, c, "poll", 0, nil, []byte("woke"))
	select {
	case resp := <-done:
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != 1 {
			t.Fatalf("long poll returned error %d, %d bytes, high watermark %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting fetch was not woken by the produce")
	}
}

func TestLogAppendTime(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	c := n.Client(t, sdk.QUIC)
	lat := "LogAppendTime"
	if resp, err := c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"message.timestamp.type": &lat}, "stamped"); err != nil {
		t.Fatal(err, resp)
	}
	old := time.Now().Add(-48 * time.Hour)
	before := time.Now().Add(-time.Second)
	produceTo(t, c, "stamped", 0, []time.Time{old, old}, []byte("a"), []byte("b"))
	seen := 0
	err := c.Consume(ctx, "stamped", func(r *kgo.Record) error {
		if r.Timestamp.Before(before) || r.Attrs.TimestampType() != 1 {
			t.Errorf("record %d: timestamp %v type %d, want the broker's append time", r.Offset, r.Timestamp, r.Attrs.TimestampType())
		}
		seen++
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(2))
	if err != nil || seen != 2 {
		t.Fatal(err, seen)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	n := nodetest.Start(t)
	c := n.Client(t, sdk.TCP)
	createTopic(ctxT(t), t, c, "epochs", 1)
	produceTo(t, c, "epochs", 0, nil, []byte("a"), []byte("b"), []byte("c"))
	md := dialRaw(t, n.Addrs().Kafka)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.SetVersion(9)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("epochs")
	mreq.Topics = append(mreq.Topics, mt)
	epoch := md.roundTrip(mreq).(*kmsg.MetadataResponse).Topics[0].Partitions[0].LeaderEpoch
	if epoch < 1 {
		t.Fatalf("leader epoch %d", epoch)
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(3)
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "epochs"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = epoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := md.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.LeaderEpoch != epoch || p.EndOffset != 3 {
		t.Fatalf("epoch %d: error %d, epoch %d, end %d; want end 3", epoch, p.ErrorCode, p.LeaderEpoch, p.EndOffset)
	}
	// A client claiming a newer epoch than the leader's is told so.
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch + 5
	resp = md.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future epoch: error %d, want UNKNOWN_LEADER_EPOCH", code)
	}
}
