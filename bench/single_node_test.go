package bench

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// One node serves every benchmark in this package: starting a node per
// b.Run would dominate short runs.
var (
	nodeOnce sync.Once
	node     *appliance.Node
	nodeDir  string
	nodeErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if node != nil {
		node.Close()
		os.RemoveAll(nodeDir)
	}
	os.Exit(code)
}

func benchNode(b *testing.B) *appliance.Node {
	b.Helper()
	nodeOnce.Do(func() {
		nodeDir, nodeErr = os.MkdirTemp("", "eddy-bench-")
		if nodeErr != nil {
			return
		}
		cfg := nodecfg.Config{
			DataDir: nodeDir,
			Listen:  nodecfg.Addresses{QUIC: "127.0.0.1:0", Kafka: "127.0.0.1:0", Admin: "127.0.0.1:0", Raft: "127.0.0.1:0"},
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		node, nodeErr = appliance.Start(ctx, cfg, zerolog.Nop())
	})
	if nodeErr != nil {
		b.Fatal(nodeErr)
	}
	return node
}

func dial(b *testing.B, n *appliance.Node, tr sdk.Transport) *sdk.Client {
	b.Helper()
	opts := []sdk.Option{sdk.WithTransport(tr), sdk.WithBrokers(n.Addrs().Kafka)}
	if tr == sdk.QUIC {
		opts = []sdk.Option{sdk.WithTransport(tr), sdk.WithBrokers(n.Addrs().QUIC), sdk.WithCAFile(n.CAFile())}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

var topicSeq atomic.Int64

func newTopic(b *testing.B, c *sdk.Client, partitions int32) string {
	b.Helper()
	topic := fmt.Sprintf("bench-%d", topicSeq.Add(1))
	resp, err := c.Admin().CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	return topic
}

const recordSize = 1024

// randomPool holds incompressible bytes; record i's value is a 1 KiB window
// of it, so no two neighbouring records are alike.
var randomPool = func() []byte {
	b := make([]byte, 64<<20)
	rand.Read(b)
	return b
}()

func value(i int) []byte {
	off := (i * 4099) % (len(randomPool) - recordSize)
	return randomPool[off : off+recordSize]
}

// producerOpts: batches as a throughput producer would send them, without
// compression so the figure is bytes that crossed the wire and hit disk.
func producerOpts() []kgo.Opt {
	return []kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression())}
}

// produceN writes n 1 KiB records asynchronously and waits for every ack.
func produceN(b *testing.B, cl *kgo.Client, topic string, n int) {
	b.Helper()
	var failed atomic.Int64
	ctx := context.Background()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d records failed", f)
	}
}

// setup dials the shared node over tr and creates a 3-partition topic.
func setup(b *testing.B, tr sdk.Transport) (*sdk.Client, string) {
	b.Helper()
	c := dial(b, benchNode(b), tr)
	b.Cleanup(c.Close)
	return c, newTopic(b, c, 3)
}

// BenchmarkProduce measures acknowledged (Raft-committed, fsynced) 1 KiB
// records per second from one kgo producer into a 3-partition topic, with
// idempotence off and on (kgo's default: one request in flight per
// partition, sequence checks in the partition).
func BenchmarkProduce(b *testing.B) {
	for _, tr := range []sdk.Transport{sdk.QUIC, sdk.TCP} {
		for _, idem := range []bool{false, true} {
			name := string(tr)
			if idem {
				name += "/idempotent"
			}
			b.Run(name, func(b *testing.B) {
				c, topic := setup(b, tr)
				opts := producerOpts()
				if idem {
					opts = []kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression())}
				}
				cl, err := c.NewKgo(opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				b.SetBytes(recordSize)
				b.ResetTimer()
				start := time.Now()
				produceN(b, cl, topic, b.N)
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkConsume measures 1 KiB records per second read by one kgo
// consumer from the beginning of a 3-partition topic.
func BenchmarkConsume(b *testing.B) {
	for _, tr := range []sdk.Transport{sdk.QUIC, sdk.TCP} {
		b.Run(string(tr), func(b *testing.B) {
			c, topic := setup(b, tr)
			pcl, err := c.NewKgo(producerOpts()...)
			if err != nil {
				b.Fatal(err)
			}
			produceN(b, pcl, topic, b.N)
			pcl.Close()
			cl, err := c.NewKgo(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(10<<20))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			b.SetBytes(recordSize)
			b.ResetTimer()
			start := time.Now()
			got := 0
			for got < b.N {
				fs := cl.PollFetches(context.Background())
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				got += fs.NumRecords()
			}
			b.ReportMetric(float64(got)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkIdlePartitions reports the node's Go heap with 100 partitions
// (100 Raft shards), each holding a few records, once idle.
func BenchmarkIdlePartitions(b *testing.B) {
	n := benchNode(b)
	c := dial(b, n, sdk.TCP)
	defer c.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	topic := newTopic(b, c, 100)
	cl, err := c.NewKgo(producerOpts()...)
	if err != nil {
		b.Fatal(err)
	}
	produceN(b, cl, topic, 1000)
	cl.Close()
	// Let elections, snapshots and buffers settle; the figure is a state,
	// not a rate, so b.N is not used.
	time.Sleep(3 * time.Second)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20)/100, "heap-MiB/partition")
	b.ReportMetric(float64(after.Sys)/(1<<20), "go-sys-MiB")
}

// BenchmarkProduceReplicated compares acknowledged produce throughput with
// replication factor 1 and 3 on a 3-node in-process cluster (all nodes and
// the client share this machine's cores), 1 KiB records, over QUIC.
func BenchmarkProduceReplicated(b *testing.B) {
	nodes := nodetest.StartCluster(b, 3, nodetest.WithConfig(func(c *nodecfg.Config) { c.Raft.TickMillis = 50 }))
	pool := x509.NewCertPool()
	for _, n := range nodes[:1] {
		pem, err := os.ReadFile(n.CAFile())
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, sdk.WithBrokers(nodes[0].Addrs().QUIC, nodes[1].Addrs().QUIC, nodes[2].Addrs().QUIC), sdk.WithCAPool(pool))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, rf := range []int16{1, 3} {
		b.Run(fmt.Sprintf("rf%d", rf), func(b *testing.B) {
			topic := fmt.Sprintf("rf%d-%d", rf, topicSeq.Add(1))
			tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer tcancel()
			if resp, err := c.Admin().CreateTopic(tctx, 3, rf, nil, topic); err != nil || resp.Err != nil {
				b.Fatal(err, resp.Err)
			}
			cl, err := c.NewKgo(producerOpts()...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			b.SetBytes(recordSize)
			b.ResetTimer()
			start := time.Now()
			produceN(b, cl, topic, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
