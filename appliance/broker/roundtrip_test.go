package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// codecs are the batch compressions a producer may use; eddy stores and
// serves batches as sent, so every one must round-trip.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// roundTripRecords is how many records each codec and transport writes.
const roundTripRecords = 100_000

// sent is what the producer was told about one record.
type sent struct {
	key, value string
	seq        int
	ts         time.Time
}

// TestKgoRoundTrip writes keyed records with headers and explicit
// timestamps through kgo over QUIC and over TCP, with every compression
// codec, and reads every one back: per partition, offsets are 0..n-1 with
// no gap, and each record has the key, value, timestamp and headers that
// were acknowledged at that offset.
func TestKgoRoundTrip(t *testing.T) {
	n := nodetest.Start(t)
	for _, tr := range []sdk.Transport{sdk.QUIC, sdk.TCP} {
		for _, cc := range codecs {
			t.Run(string(tr)+"/"+cc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				c := n.Client(t, tr)
				topic := fmt.Sprintf("roundtrip-%s-%s", tr, cc.name)
				createTopic(ctx, t, c, topic, 3)
				acked := produceKeyed(ctx, t, c, topic, roundTripRecords, kgo.ProducerBatchCompression(cc.codec))
				verifyPartitions(ctx, t, c, topic, acked)
			})
		}
	}
}

func createTopic(ctx context.Context, t *testing.T, c *sdk.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := c.Admin().CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produceKeyed writes n records with 1,000 distinct keys and returns, per
// partition, the records by acknowledged offset.
func produceKeyed(ctx context.Context, t *testing.T, c *sdk.Client, topic string, n int, opts ...kgo.Opt) map[int32]map[int64]sent {
	t.Helper()
	cl, err := c.NewKgo(append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		acked    = map[int32]map[int64]sent{}
		firstErr error
	)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		s := sent{key: "key-" + strconv.Itoa(i%1000), value: "value-" + strconv.Itoa(i), seq: i, ts: base.Add(time.Duration(i) * time.Millisecond)}
		r := &kgo.Record{
			Key: []byte(s.key), Value: []byte(s.value), Timestamp: s.ts,
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}, {Key: "kind", Value: []byte("test")}},
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if acked[r.Partition] == nil {
				acked[r.Partition] = map[int64]sent{}
			}
			acked[r.Partition][r.Offset] = s
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	total := 0
	for _, m := range acked {
		total += len(m)
	}
	if total != n {
		t.Fatalf("acknowledged %d of %d records", total, n)
	}
	return acked
}

// verifyPartitions reads every partition from the start and checks it
// holds exactly the acknowledged records, in offset order, with no gap.
func verifyPartitions(ctx context.Context, t *testing.T, c *sdk.Client, topic string, acked map[int32]map[int64]sent) {
	t.Helper()
	if len(acked) < 2 {
		t.Fatalf("records landed in %d partition(s); keys should spread them", len(acked))
	}
	starts := map[int32]int64{}
	for p := range acked {
		starts[p] = 0
	}
	want := 0
	for _, m := range acked {
		want += len(m)
	}
	next := map[int32]int64{}
	got := 0
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		exp, ok := acked[r.Partition][r.Offset]
		if !ok {
			return fmt.Errorf("read %d/%d, which was never acknowledged", r.Partition, r.Offset)
		}
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: read offset %d, expected %d (gap or reorder)", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		if string(r.Key) != exp.key || string(r.Value) != exp.value {
			return fmt.Errorf("%d/%d: got %q=%q, want %q=%q", r.Partition, r.Offset, r.Key, r.Value, exp.key, exp.value)
		}
		if !r.Timestamp.Equal(exp.ts) {
			return fmt.Errorf("%d/%d: timestamp %v, want %v", r.Partition, r.Offset, r.Timestamp, exp.ts)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "seq" || string(r.Headers[0].Value) != strconv.Itoa(exp.seq) || r.Headers[1].Key != "kind" {
			return fmt.Errorf("%d/%d: headers %v", r.Partition, r.Offset, r.Headers)
		}
		got++
		return nil
	}, sdk.AtOffsets(starts), sdk.MaxRecords(want))
	if err != nil {
		t.Fatal(err)
	}
	for p, m := range acked {
		if next[p] != int64(len(m)) {
			t.Fatalf("partition %d: read up to offset %d, %d were acknowledged", p, next[p], len(m))
		}
	}
	if got != want {
		t.Fatalf("read %d records, want %d", got, want)
	}
}
