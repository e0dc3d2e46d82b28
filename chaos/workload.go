package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

const (
	topic = "chaos"
	group = "chaos-consumers"
)

// ack is a record the cluster acknowledged at an offset.
type ack struct {
	value     string
	producer  int
	seq       int64
	partition int32
	offset    int64
	at        time.Time
}

// read is a record a group consumer was given.
type read struct {
	value     string
	partition int32
	offset    int64
	consumer  string
}

// commitObs is a committed group offset seen by the offset monitor.
type commitObs struct {
	partition int32
	offset    int64
	at        time.Time
}

// history is everything the clients did and were told.
type history struct {
	mu        sync.Mutex
	sent      map[string]bool // every value a producer tried to send
	acks      []ack
	failed    []string // values whose produce failed: in the log or not
	reads     []read
	commits   []commitObs
	ackCount  atomic.Int64
	readCount atomic.Int64
}

func newHistory() *history { return &history{sent: map[string]bool{}} }

func recordValue(producer int, seq int64) string { return fmt.Sprintf("p%d-%09d", producer, seq) }

// workload runs producers, group consumers and an offset monitor until
// its context ends.
type workload struct {
	c     *cluster
	h     *history
	rate  int // records per second per producer
	log   func(string, ...any)
	wg    sync.WaitGroup
	errMu sync.Mutex
	errs  []error
}

// transports alternate QUIC and TCP across clients, so both paths carry
// producers and consumers.
var transports = []sdk.Transport{sdk.QUIC, sdk.TCP}

func (w *workload) dial(ctx context.Context, t sdk.Transport, id string, opts ...kgo.Opt) (*sdk.Client, error) {
	base := []kgo.Opt{
		kgo.RetryTimeout(time.Minute),
		kgo.RequestTimeoutOverhead(5 * time.Second),
	}
	dopts := []sdk.Option{sdk.WithBrokers(w.c.brokers()...), sdk.WithTransport(t), sdk.WithClientID(id), sdk.WithKgoOptions(append(base, opts...)...)}
	if t == sdk.QUIC {
		// The Kafka TCP listener is plaintext here; a CA would make
		// the SDK speak TLS to it.
		dopts = append(dopts, sdk.WithCAFile(w.c.caFile()))
	}
	cl, err := sdk.Dial(ctx, dopts...)
	if err != nil {
		return nil, fmt.Errorf("chaos: dial %s over %s: %w", id, t, err)
	}
	return cl, nil
}

func (w *workload) fail(err error) {
	w.errMu.Lock()
	w.errs = append(w.errs, err)
	w.errMu.Unlock()
}

// createTopic makes the test topic, retrying while the cluster forms.
func createTopic(ctx context.Context, adm *kadm.Client, partitions int32) error {
	for {
		resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
		if err == nil && (resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists)) {
			return nil
		}
		if err == nil {
			err = resp.Err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: create topic %s: %w (last error: %v)", topic, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// produce runs one idempotent producer (acks=all, kgo's default) until
// ctx ends, then waits for its outstanding records up to drain.
func (w *workload) produce(ctx context.Context, id int, t sdk.Transport, drain time.Duration) {
	defer w.wg.Done()
	cl, err := w.dial(ctx, t, fmt.Sprintf("chaos-producer-%d", id),
		kgo.RecordDeliveryTimeout(45*time.Second),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(2000))
	if err != nil {
		w.fail(err)
		return
	}
	defer cl.Close()
	k := cl.Kgo()
	tick := time.NewTicker(time.Second / time.Duration(w.rate))
	defer tick.Stop()
	for seq := int64(0); ; seq++ {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), drain)
			_ = k.Flush(fctx)
			cancel()
			return
		case <-tick.C:
		}
		v := recordValue(id, seq)
		w.h.mu.Lock()
		w.h.sent[v] = true
		w.h.mu.Unlock()
		seq := seq
		// The produce outlives ctx: records already handed to kgo are
		// either acknowledged or failed during the drain.
		k.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			w.h.mu.Lock()
			defer w.h.mu.Unlock()
			if err != nil {
				w.h.failed = append(w.h.failed, v)
				return
			}
			w.h.acks = append(w.h.acks, ack{value: v, producer: id, seq: seq, partition: r.Partition, offset: r.Offset, at: time.Now()})
			w.h.ackCount.Add(1)
		})
	}
}

// consume runs one member of the consumer group, committing as kgo does
// by default (marked offsets every second and on revoke), until ctx ends.
func (w *workload) consume(ctx context.Context, id int, t sdk.Transport) {
	defer w.wg.Done()
	name := fmt.Sprintf("chaos-consumer-%d-%s", id, t)
	cl, err := w.dial(ctx, t, name,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(time.Second),
		kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(20*time.Second))
	if err != nil {
		w.fail(err)
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = cl.Kgo().CommitUncommittedOffsets(cctx)
		cancel()
		cl.Close()
	}()
	k := cl.Kgo()
	for ctx.Err() == nil {
		fs := k.PollFetches(ctx)
		var batch []read
		fs.EachRecord(func(r *kgo.Record) {
			batch = append(batch, read{value: string(r.Value), partition: r.Partition, offset: r.Offset, consumer: name})
		})
		if len(batch) > 0 {
			w.h.mu.Lock()
			w.h.reads = append(w.h.reads, batch...)
			w.h.mu.Unlock()
			w.h.readCount.Add(int64(len(batch)))
		}
	}
}

// monitorCommits polls the group's committed offsets, which must never go
// backwards.
func (w *workload) monitorCommits(ctx context.Context) {
	defer w.wg.Done()
	cl, err := w.dial(ctx, sdk.TCP, "chaos-offset-monitor")
	if err != nil {
		w.fail(err)
		return
	}
	defer cl.Close()
	adm := cl.Admin()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		offs, err := adm.FetchOffsets(rctx, group)
		cancel()
		if err != nil {
			continue // faults make requests fail; only answers count
		}
		now := time.Now()
		var obs []commitObs
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.Topic == topic {
				obs = append(obs, commitObs{partition: o.Partition, offset: o.At, at: now})
			}
		})
		w.h.mu.Lock()
		w.h.commits = append(w.h.commits, obs...)
		w.h.mu.Unlock()
	}
}
