package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsTarget embeds NATS JetStream servers with file storage. Each eddy
// partition maps to one stream (its own store and, at R3, its own Raft
// group, as an eddy partition is), with subject "<topic>.<partition>".
type natsTarget struct {
	name       string
	syncAlways bool
}

func init() {
	register(natsTarget{name: "nats", syncAlways: true})
	register(natsTarget{name: "nats-async", syncAlways: false})
}

func (t natsTarget) Name() string { return t.name }

func (t natsTarget) Describe() string {
	if t.syncAlways {
		return "NATS JetStream, file storage, SyncAlways (fsync each write: durable at ack, like eddy)"
	}
	return "NATS JetStream, file storage, default sync (background fsync every 2 min: NOT durable at ack)"
}

type natsInstance struct {
	servers []*server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	urls    []string
}

func (t natsTarget) Start(ctx context.Context, w Workload, dir string) (Instance, error) {
	n := w.Nodes()
	inst := &natsInstance{}
	var routes []*url.URL
	clusterPorts := make([]int, n)
	if n > 1 {
		for i := range clusterPorts {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			clusterPorts[i] = p
			routes = append(routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
		}
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("bench-%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("nats%d", i+1)),
			SyncAlways: t.syncAlways,
			NoSigs:     true,
			NoLog:      true,
			// JetStream's default payload limit is 1 MiB; records up to
			// the workload maximum must fit.
			MaxPayload: 2 << 20,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: clusterPorts[i]}
			opts.Routes = routes
		}
		s, err := server.NewServer(opts)
		if err != nil {
			inst.Close()
			return nil, fmt.Errorf("nats server: %w", err)
		}
		inst.servers = append(inst.servers, s)
		go s.Start()
	}
	for _, s := range inst.servers {
		if !s.ReadyForConnections(30 * time.Second) {
			inst.Close()
			return nil, errors.New("nats server not ready for connections within 30 s")
		}
		inst.urls = append(inst.urls, s.ClientURL())
	}
	var err error
	inst.nc, inst.js, err = inst.connect()
	if err != nil {
		inst.Close()
		return nil, err
	}
	return inst, nil
}

func (n *natsInstance) connect(opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	url := n.urls[0]
	for _, u := range n.urls[1:] {
		url += "," + u
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

func streamName(topic string, p int) string { return fmt.Sprintf("%s-%d", topic, p) }

func subject(topic string, p int) string { return topic + "." + strconv.Itoa(p) }

// CreateTopic creates one stream per partition. A fresh cluster elects
// its JetStream meta leader first: creation is retried until then.
func (n *natsInstance) CreateTopic(ctx context.Context, topic string, partitions, replication int) error {
	for p := range partitions {
		cfg := jetstream.StreamConfig{
			Name:     streamName(topic, p),
			Subjects: []string{subject(topic, p)},
			Storage:  jetstream.FileStorage,
			Replicas: replication,
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := n.js.CreateStream(cctx, cfg)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create stream %s: %w", cfg.Name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func (n *natsInstance) Close() error {
	if n.nc != nil {
		n.nc.Close()
	}
	for _, s := range n.servers {
		s.Shutdown()
	}
	for _, s := range n.servers {
		s.WaitForShutdown()
	}
	return nil
}

// natsProducer publishes asynchronously; the JetStream ack is the
// acknowledgement.
type natsProducer struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	topic      string
	partitions int
	keyed      bool
	next       atomic.Uint64
	mu         sync.Mutex
	done       map[*nats.Msg]func(error)
}

func (n *natsInstance) NewProducer(ctx context.Context, w Workload, topic string) (Producer, error) {
	p := &natsProducer{topic: topic, partitions: w.Partitions, keyed: w.Keys != "none", done: map[*nats.Msg]func(error){}}
	var err error
	p.nc, p.js, err = n.connect(
		// The runner bounds records in flight; the client must not stall first.
		jetstream.WithPublishAsyncMaxPending(w.InFlight+1),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) { p.finish(m, nil) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.finish(m, err) }),
	)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *natsProducer) finish(m *nats.Msg, err error) {
	p.mu.Lock()
	done := p.done[m]
	delete(p.done, m)
	p.mu.Unlock()
	if done != nil {
		done(err)
	}
}

// Send picks the stream as eddy picks a partition: by key hash when the
// workload has keys, otherwise round robin.
func (p *natsProducer) Send(ctx context.Context, key, value []byte, done func(error)) error {
	var part int
	if p.keyed && key != nil {
		h := fnv.New32a()
		h.Write(key)
		part = int(h.Sum32() % uint32(p.partitions))
	} else {
		part = int(p.next.Add(1) % uint64(p.partitions))
	}
	m := &nats.Msg{Subject: subject(p.topic, part), Data: value}
	p.mu.Lock()
	p.done[m] = done
	p.mu.Unlock()
	if _, err := p.js.PublishMsgAsync(m); err != nil {
		p.mu.Lock()
		delete(p.done, m)
		p.mu.Unlock()
		return fmt.Errorf("nats publish: %w", err)
	}
	return nil
}

func (p *natsProducer) Flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *natsProducer) Close() { p.nc.Close() }

// natsConsumer reads its streams with ordered consumers (no acks), the
// fastest way JetStream offers to read a stream from the start.
type natsConsumer struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	streams []string
}

func (n *natsInstance) NewConsumer(ctx context.Context, w Workload, topic string, index, count int) (Consumer, error) {
	c := &natsConsumer{}
	for p := index; p < w.Partitions; p += count {
		c.streams = append(c.streams, streamName(topic, p))
	}
	var err error
	c.nc, c.js, err = n.connect()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *natsConsumer) Run(ctx context.Context, fn func([]byte) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // fn is called from one goroutine at a time, as eddy's consumer does
	errs := make(chan error, len(c.streams))
	var wg sync.WaitGroup
	for _, s := range c.streams {
		cons, err := c.js.OrderedConsumer(ctx, s, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return fmt.Errorf("ordered consumer on %s: %w", s, err)
		}
		it, err := cons.Messages()
		if err != nil {
			return fmt.Errorf("messages of %s: %w", s, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			it.Stop()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := it.Next()
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						errs <- fmt.Errorf("read %s: %w", s, err)
					}
					cancel()
					return
				}
				mu.Lock()
				more := fn(m.Data())
				mu.Unlock()
				if !more {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (c *natsConsumer) Close() { c.nc.Close() }
