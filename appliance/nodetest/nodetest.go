package nodetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/sdk"
)

// Option adjusts a test node's config.
type Option func(*nodecfg.Config)

// WithConfig applies f to the node's config.
func WithConfig(f func(*nodecfg.Config)) Option { return Option(f) }

// Node is a running in-process node that stops when the test ends.
type Node struct {
	*appliance.Node
	Config nodecfg.Config
	// Options are passed to appliance.StartWith at every start.
	Options appliance.Options
	t       testing.TB
}

// Start starts a single node on 127.0.0.1 with ports chosen by the kernel
// and a fresh data directory. Raft ticks are short so leaders are elected
// within a few hundred milliseconds. Logs go to the test log at warn level
// unless EDDY_TEST_LOG=debug is set.
func Start(t testing.TB, opts ...Option) *Node {
	t.Helper()
	return StartWith(t, appliance.Options{}, opts...)
}

// StartWith is Start with the node's appliance.Options.
func StartWith(t testing.TB, ao appliance.Options, opts ...Option) *Node {
	t.Helper()
	cfg := baseConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	n := &Node{Config: cfg, Options: ao, t: t}
	if err := n.tryStart(); err != nil {
		t.Fatal(err)
	}
	return n
}

func baseConfig(t testing.TB) nodecfg.Config {
	return nodecfg.Config{
		DataDir: t.TempDir(),
		Listen: nodecfg.Addresses{
			QUIC: "127.0.0.1:0", Kafka: "127.0.0.1:0", Admin: "127.0.0.1:0", Raft: "127.0.0.1:0",
		},
		Raft: nodecfg.RaftConfig{TickMillis: 10},
		// Members of a test group start within milliseconds of each other.
		Groups: nodecfg.GroupsConfig{InitialRebalanceDelay: "100ms"},
	}
}

// tryStart starts the node; it may run on any goroutine.
func (n *Node) tryStart() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := appliance.StartWith(ctx, n.Config, testLogger(n.t), n.Options)
	if err != nil {
		return fmt.Errorf("start node %d: %w", n.Config.NodeID, err)
	}
	n.Node = node
	// Pin the ports chosen at first start, so a restart comes back on the
	// same addresses (Raft's address is recorded in its data directory).
	a := node.Addrs()
	n.Config.Listen = nodecfg.Addresses{QUIC: a.QUIC, Kafka: a.Kafka, Admin: a.Admin, Raft: a.Raft}
	n.t.Cleanup(node.Close)
	return nil
}

// Stop stops the node (as a crash would, minus the lost page cache): its
// listeners close and its Raft replicas stop.
func (n *Node) Stop() { n.Node.Close() }

// Start starts a stopped node again on the same directory and addresses.
func (n *Node) Start() {
	n.t.Helper()
	if err := n.tryStart(); err != nil {
		n.t.Fatal(err)
	}
}

// Restart stops the node and starts it again on the same directory and
// addresses.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// Client dials the node with the SDK over the given transport; it is
// closed when t ends.
func (n *Node) Client(t testing.TB, tr sdk.Transport, opts ...sdk.Option) *sdk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, append(n.SDKOptions(tr), opts...)...)
	if err != nil {
		t.Fatalf("dial node over %s: %v", tr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// SDKOptions are the options that reach this node over tr. The Kafka TCP
// listener is plaintext unless the config turned TLS on.
func (n *Node) SDKOptions(tr sdk.Transport) []sdk.Option {
	if tr == sdk.QUIC {
		return []sdk.Option{sdk.WithBrokers(n.Addrs().QUIC), sdk.WithTransport(tr), sdk.WithCAFile(n.CAFile())}
	}
	opts := []sdk.Option{sdk.WithBrokers(n.Addrs().Kafka), sdk.WithTransport(tr)}
	if n.Config.KafkaTLS {
		opts = append(opts, sdk.WithCAFile(n.CAFile()))
	}
	return opts
}

// KgoClient returns a plain kgo client over TCP with extra options,
// closed when t ends.
func (n *Node) KgoClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addrs().Kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// StartCluster starts n founding nodes that form one cluster (ids 1..n,
// all controllers). Nodes start concurrently: each waits for a quorum of
// the meta shard. opts apply to every node.
func StartCluster(t testing.TB, n int, opts ...Option) []*Node {
	t.Helper()
	initial := map[uint64]string{}
	for i := 1; i <= n; i++ {
		initial[uint64(i)] = "127.0.0.1:" + strconv.Itoa(freePort(t))
	}
	nodes := make([]*Node, n)
	errs := make(chan error, n)
	secret := "test-cluster-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range nodes {
		id := uint64(i + 1)
		cfg := baseConfig(t)
		cfg.NodeID = id
		cfg.InitialCluster = initial
		cfg.ClusterSecret = secret
		cfg.Listen.Raft = initial[id]
		for _, o := range opts {
			o(&cfg)
		}
		nodes[i] = &Node{Config: cfg, t: t}
		go func(nd *Node) { errs <- nd.tryStart() }(nodes[i])
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// StartAll starts stopped nodes again, concurrently: after a full
// cluster stop no node can start alone, as each waits for a quorum.
func StartAll(t testing.TB, nodes ...*Node) {
	t.Helper()
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- n.tryStart() }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Join starts node id and has it join the cluster of via (through via's
// admin API, as `eddy serve --join` does).
func Join(t testing.TB, via *Node, id uint64, opts ...Option) *Node {
	t.Helper()
	cfg := baseConfig(t)
	cfg.NodeID = id
	cfg.Join = "http://" + via.Addrs().Admin
	cfg.AdminToken = via.Config.AdminToken
	cfg.ClusterSecret = via.Config.ClusterSecret
	cfg.Listen.Raft = "127.0.0.1:" + strconv.Itoa(freePort(t))
	for _, o := range opts {
		o(&cfg)
	}
	n := &Node{Config: cfg, t: t}
	if err := n.tryStart(); err != nil {
		t.Fatal(err)
	}
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLogger(t testing.TB) zerolog.Logger {
	level := zerolog.WarnLevel
	if l, err := zerolog.ParseLevel(os.Getenv("EDDY_TEST_LOG")); err == nil && os.Getenv("EDDY_TEST_LOG") != "" {
		level = l
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(level).With().Timestamp().Logger()
}

// EndOffsets lists a topic's end offsets, asking again for up to 30 s
// while a partition has no leader (after a node died, or while one that
// restarted elects): kadm leaves retrying to the caller.
func EndOffsets(t testing.TB, adm *kadm.Client, topic string) kadm.ListedOffsets {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			return ends
		}
		if time.Now().After(deadline) {
			t.Fatalf("list end offsets of %s: %v", topic, err)
		}
	}
}
