package bench

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/sdk"
)

// eddyTarget runs eddy nodes in this process, with the defaults a user
// gets from `eddy serve`, and reaches them with the SDK over transport.
type eddyTarget struct {
	name      string
	transport sdk.Transport
}

func init() {
	register(eddyTarget{name: "eddy-quic", transport: sdk.QUIC})
	register(eddyTarget{name: "eddy-tcp", transport: sdk.TCP})
}

func (t eddyTarget) Name() string { return t.name }

func (t eddyTarget) Describe() string {
	if t.transport == sdk.QUIC {
		return "eddy, Kafka protocol over QUIC (the SDK); acknowledged after a Raft commit (fsync)"
	}
	return "eddy, Kafka protocol over TCP (franz-go); acknowledged after a Raft commit (fsync)"
}

type eddyInstance struct {
	target eddyTarget
	// validator, when set, is attached to the topic (Workload.Validator).
	validator       string
	validatorConfig map[string]string
	nodes           []*appliance.Node // in this process
	proc            *brokerProcess    // or one node in its own process
	seeds           []string
	client          *sdk.Client
	pool            *x509.CertPool
	log             *os.File
}

// Start starts w.Nodes() nodes; three form a cluster as `eddy serve
// --initial-cluster` would.
func (t eddyTarget) Start(ctx context.Context, w Workload, dir string) (Instance, error) {
	logFile, err := os.Create(filepath.Join(dir, "eddy.log"))
	if err != nil {
		return nil, fmt.Errorf("eddy log: %w", err)
	}
	log := zerolog.New(logFile).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	inst := &eddyInstance{target: t, log: logFile, validator: w.Validator, validatorConfig: w.ValidatorConfig}
	n := w.Nodes()
	initial := map[uint64]string{}
	if n > 1 {
		for i := 1; i <= n; i++ {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			initial[uint64(i)] = "127.0.0.1:" + strconv.Itoa(port)
		}
	}
	cfgs := make([]nodecfg.Config, n)
	for i := range cfgs {
		cfgs[i] = nodecfg.Config{
			DataDir: filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
			Listen:  nodecfg.Addresses{QUIC: "127.0.0.1:0", Kafka: "127.0.0.1:0", Admin: "127.0.0.1:0", Raft: "127.0.0.1:0"},
		}
		if n > 1 {
			id := uint64(i + 1)
			cfgs[i].NodeID = id
			cfgs[i].InitialCluster = initial
			cfgs[i].ClusterSecret = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			cfgs[i].Listen.Raft = initial[id]
		}
	}
	if n > 1 {
		secret := cfgs[0].ClusterSecret
		for i := range cfgs {
			cfgs[i].ClusterSecret = secret
		}
	}
	// Founders wait for each other's quorum: start them together.
	inst.nodes = make([]*appliance.Node, n)
	errs := make(chan error, n)
	for i := range cfgs {
		go func() {
			nd, err := appliance.Start(ctx, cfgs[i], log.With().Uint64("node", uint64(i+1)).Logger())
			inst.nodes[i] = nd
			errs <- err
		}()
	}
	var startErr error
	for range cfgs {
		startErr = errors.Join(startErr, <-errs)
	}
	if startErr != nil {
		inst.Close()
		return nil, fmt.Errorf("start eddy: %w", startErr)
	}
	inst.pool = x509.NewCertPool()
	for _, nd := range inst.nodes {
		pem, err := os.ReadFile(nd.CAFile())
		if err != nil || !inst.pool.AppendCertsFromPEM(pem) {
			inst.Close()
			return nil, fmt.Errorf("CA of an eddy node: %v", err)
		}
	}
	for _, nd := range inst.nodes {
		if t.transport == sdk.QUIC {
			inst.seeds = append(inst.seeds, nd.Addrs().QUIC)
		} else {
			inst.seeds = append(inst.seeds, nd.Addrs().Kafka)
		}
	}
	inst.client, err = inst.dial(ctx)
	if err != nil {
		inst.Close()
		return nil, err
	}
	return inst, nil
}

func (e *eddyInstance) dial(ctx context.Context, kopts ...kgo.Opt) (*sdk.Client, error) {
	opts := []sdk.Option{sdk.WithTransport(e.target.transport), sdk.WithBrokers(e.seeds...), sdk.WithKgoOptions(kopts...)}
	if e.target.transport == sdk.QUIC {
		// The Kafka TCP listener is plaintext by default, as a user gets it.
		opts = append(opts, sdk.WithCAPool(e.pool))
	}
	c, err := sdk.Dial(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial eddy over %s: %w", e.target.transport, err)
	}
	return c, nil
}

func (e *eddyInstance) CreateTopic(ctx context.Context, name string, partitions, replication int) error {
	var configs map[string]*string
	if e.validator != "" {
		module, err := validatorModule(e.validator)
		if err != nil {
			return err
		}
		adminAddr := ""
		if len(e.nodes) > 0 {
			adminAddr = e.nodes[0].Addrs().Admin
		}
		adm := &sdk.ClusterAdmin{URL: "http://" + adminAddr}
		if _, err := adm.UploadPlugin(ctx, "bench-validator", module, ""); err != nil {
			return fmt.Errorf("upload the validator: %w", err)
		}
		v := "bench-validator"
		configs = map[string]*string{"eddy.validator": &v}
		for k, val := range e.validatorConfig {
			configs["eddy.validator.config."+k] = &val
		}
	}
	resp, err := e.client.Admin().CreateTopic(ctx, int32(partitions), int16(replication), configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

func (e *eddyInstance) Close() error {
	if e.client != nil {
		e.client.Close()
	}
	for _, nd := range e.nodes {
		if nd != nil {
			nd.Close()
		}
	}
	if e.proc != nil {
		e.proc.stop()
	}
	if e.log != nil {
		e.log.Close()
	}
	return nil
}

// eddyProducer is a kgo producer with the workload's acks and codec.
type eddyProducer struct {
	client *sdk.Client
	topic  string
}

func (e *eddyInstance) NewProducer(ctx context.Context, w Workload, topic string) (Producer, error) {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		// The runner bounds records in flight; kgo's own buffer must not
		// block first.
		kgo.MaxBufferedRecords(w.InFlight + 1),
	}
	if w.Linger != nil {
		opts = append(opts, kgo.ProducerLinger(w.Linger.D()))
	}
	switch w.Acks {
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	switch w.Compression {
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	default:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	c, err := e.dial(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &eddyProducer{client: c, topic: topic}, nil
}

func (p *eddyProducer) Send(ctx context.Context, key, value []byte, done func(error)) error {
	p.client.Kgo().Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

func (p *eddyProducer) Flush(ctx context.Context) error { return p.client.Kgo().Flush(ctx) }

func (p *eddyProducer) Close() { p.client.Close() }

type eddyConsumer struct{ client *sdk.Client }

func (e *eddyInstance) NewConsumer(ctx context.Context, w Workload, topic string, index, n int) (Consumer, error) {
	parts := map[int32]kgo.Offset{}
	for p := index; p < w.Partitions; p += n {
		parts[int32(p)] = kgo.NewOffset().AtStart()
	}
	c, err := e.dial(ctx, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return nil, err
	}
	return &eddyConsumer{client: c}, nil
}

func (c *eddyConsumer) Run(ctx context.Context, fn func([]byte) bool) error {
	cl := c.client.Kgo()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var err error
		fs.EachError(func(_ string, _ int32, e error) { err = errors.Join(err, e) })
		if err != nil {
			return fmt.Errorf("eddy fetch: %w", err)
		}
		more := true
		fs.EachRecord(func(r *kgo.Record) {
			if more {
				more = fn(r.Value)
			}
		})
		if !more {
			return nil
		}
	}
}

func (c *eddyConsumer) Close() { c.client.Close() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// validatorModule reads a validator: a .wasm file, or an example plugin
// built by `make plugins`.
func validatorModule(name string) ([]byte, error) {
	path := name
	if filepath.Ext(name) != ".wasm" {
		path = filepath.Join("plugins", "examples", name, name+".wasm")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("validator %s: %w (run `make plugins` from the repository root, or give a .wasm file)", name, err)
	}
	return b, nil
}
