package appliance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/appliance/adminapi"
	"github.com/eddybroker/eddy/appliance/broker"
	"github.com/eddybroker/eddy/appliance/groups"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/peers"
	"github.com/eddybroker/eddy/appliance/status"
	"github.com/eddybroker/eddy/plugins"
	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/transport"
)

// Node is a running eddy node.
type Node struct {
	cfg      nodecfg.Config
	log      zerolog.Logger
	metrics  *status.Metrics
	tls      *transport.NodeTLS
	host     *raftgroups.Host
	view     *peers.View
	viewRef  atomic.Pointer[peers.View] // for Raft callbacks that may run before view is set
	broker   *broker.Broker
	plugins  *plugins.Host
	handler  deferredHandler
	quic     *transport.Server
	kafka    *transport.Server
	admin    *http.Server
	adminMux *http.ServeMux
	adminLn  net.Listener
	addrs    Addrs
	ready    atomic.Bool

	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
}

// Addrs are the addresses a node is reachable at, after binding (so a
// port 0 in the config is resolved).
type Addrs struct {
	QUIC, Kafka, Admin, Raft string
}

// Options are what a node learns from what runs it rather than from its
// config.
type Options struct {
	// Version is the running eddy's version, reported in the admin API
	// and `eddy cluster status`; empty means "dev".
	Version string
	// System is the appliance the node runs on (appliance/boot), which
	// reports its boot slots and takes updates; nil for `eddy serve`.
	System adminapi.System
}

// Start runs a node until Close. ctx bounds startup only.
func Start(ctx context.Context, cfg nodecfg.Config, log zerolog.Logger) (*Node, error) {
	return StartWith(ctx, cfg, log, Options{})
}

// StartWith is Start with Options.
func StartWith(ctx context.Context, cfg nodecfg.Config, log zerolog.Logger, opts Options) (_ *Node, err error) {
	if opts.System == nil {
		v := opts.Version
		if v == "" {
			v = "dev"
		}
		opts.System = processSystem{version: v}
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := meta.ValidateConfigs(cfg.Topics.Defaults); err != nil {
		return nil, fmt.Errorf("config: topics.defaults: %w", err)
	}
	if cfg.Topics.DefaultPartitions > meta.MaxPartitions {
		return nil, fmt.Errorf("config: topics.default_partitions: %d is above the limit of %d", cfg.Topics.DefaultPartitions, meta.MaxPartitions)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: log, metrics: status.NewMetrics(), errs: make(chan error, 4)}
	defer func() {
		if err != nil {
			n.closeListeners()
		}
	}()
	if cfg.Insecure {
		log.Warn().Msg("insecure: true — plaintext Kafka, unauthenticated clients and an open admin API may be exposed beyond loopback; use only in a lab")
	}

	// The certificate also serves Raft's mutual TLS, where peers check it
	// against the address they dialled.
	hosts := transport.HostsFromAddrs(cfg.Listen.QUIC, cfg.Listen.Kafka, cfg.Listen.Admin, cfg.Listen.Raft,
		cfg.Advertise.QUIC, cfg.Advertise.Kafka, cfg.Advertise.Admin, cfg.Advertise.Raft, cfg.InitialCluster[cfg.NodeID])
	if cfg.ClusterSecret != "" {
		n.tls, err = transport.EnsureClusterTLS(filepath.Join(cfg.DataDir, "tls"), []byte(cfg.ClusterSecret), hosts)
	} else {
		n.tls, err = transport.EnsureNodeTLS(filepath.Join(cfg.DataDir, "tls"), hosts)
		if len(cfg.InitialCluster) > 1 || cfg.Join != "" {
			log.Warn().Msg("this cluster has no cluster_secret: every node has its own CA, so clients need the bundle of all of them (tls/cluster-ca.crt) and a new one when a node joins")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if err := n.loadClientCAs(); err != nil {
		return nil, err
	}
	handshakeTimeout, frameTimeout, writeTimeout, idleTimeout := cfg.Limits.Timeouts()
	serverCfg := func(name string) transport.ServerConfig {
		return transport.ServerConfig{
			Name:                 name,
			Handler:              &n.handler,
			MaxFrameBytes:        cfg.Limits.MaxFrameBytes,
			MaxInFlight:          cfg.Limits.MaxInFlightPerConn,
			IdleTimeout:          idleTimeout,
			MaxPreAuthFrameBytes: cfg.Limits.MaxPreAuthFrameBytes,
			MaxConnsPerIP:        cfg.Limits.MaxConnectionsPerIP,
			MaxStreamsPerConn:    cfg.Limits.MaxStreamsPerQUICConnection,
			HandshakeTimeout:     handshakeTimeout,
			FrameTimeout:         frameTimeout,
			WriteTimeout:         writeTimeout,
			MinTransferRate:      cfg.Limits.MinTransferRate,
			OnLimit:              func(limit string) { n.metrics.LimitsExceeded.WithLabelValues(limit).Inc() },
			Logger:               log,
			// A client certificate or the listener's lack of SASL gives a
			// connection its principal before its first frame.
			OnConnect: n.handler.connected,
		}
	}
	n.quic, err = transport.ListenQUIC(cfg.Listen.QUIC, n.tls.ServerConfigFor(clientAuth(cfg.Auth.QUIC), transport.ALPN), serverCfg(broker.ListenerQUIC))
	if err != nil {
		return nil, fmt.Errorf("listen quic %s: %w", cfg.Listen.QUIC, err)
	}
	var kafkaTLS = n.tls.ServerConfigFor(clientAuth(cfg.Auth.Kafka))
	if !cfg.KafkaTLS {
		kafkaTLS = nil
	}
	n.kafka, err = transport.ListenTCP(cfg.Listen.Kafka, kafkaTLS, serverCfg(broker.ListenerKafka))
	if err != nil {
		return nil, fmt.Errorf("listen kafka %s: %w", cfg.Listen.Kafka, err)
	}
	n.adminLn, err = net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", cfg.Listen.Admin, err)
	}
	n.adminLn = n.adminListener(n.adminLn)
	raftListen, err := resolveRaftAddr(cfg.Listen.Raft)
	if err != nil {
		return nil, fmt.Errorf("listen raft %s: %w", cfg.Listen.Raft, err)
	}
	n.addrs = Addrs{
		QUIC:  advertised(cfg.Advertise.QUIC, n.quic.Addr()),
		Kafka: advertised(cfg.Advertise.Kafka, n.kafka.Addr()),
		Admin: advertised(cfg.Advertise.Admin, n.adminLn.Addr()),
		Raft:  cfg.Advertise.Raft,
	}
	if n.addrs.Raft == "" {
		// A founder's peers know it by its initial_cluster address.
		n.addrs.Raft = cfg.InitialCluster[cfg.NodeID]
	}
	if n.addrs.Raft == "" {
		n.addrs.Raft = advertisedHostPort(raftListen)
	}
	n.startAdmin()
	caPEM, err := os.ReadFile(n.tls.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}

	if cfg.Join != "" {
		if err := askToJoin(ctx, n.peerHTTP(), cfg.Join, cfg.AdminToken, cfg.NodeID, n.addrs.Raft); err != nil {
			return nil, err
		}
	}
	n.host, err = raftgroups.Start(ctx, raftgroups.Config{
		NodeID:                   cfg.NodeID,
		DataDir:                  cfg.DataDir,
		RaftAddr:                 n.addrs.Raft,
		RaftListenAddr:           raftListen,
		MutualTLS:                raftTLS(cfg, n.tls),
		InitialMembers:           cfg.InitialCluster,
		Join:                     cfg.Join != "",
		RTTMillisecond:           cfg.Raft.TickMillis,
		PartitionSnapshotEntries: cfg.Raft.SnapshotEntries,
		HeartbeatTicks:           cfg.Raft.HeartbeatTicks,
		GroupShards:              cfg.Groups.Shards,
		ElectionTicks:            cfg.Raft.ElectionTicks,
		Self: meta.Node{
			ID: cfg.NodeID, RaftAddr: n.addrs.Raft, QUICAddr: n.addrs.QUIC,
			KafkaAddr: n.addrs.Kafka, AdminAddr: n.addrs.Admin, Rack: cfg.Rack, CACert: string(caPEM),
		},
		TopicDefaults:          cfg.TopicDefaults(),
		RetentionCheckInterval: cfg.RetentionInterval(),
		OnLeaderUpdated:        func(_, _, _ uint64) { n.metrics.LeaderChanges.Inc() },
		OnPeerUnreachable: func(addr string) {
			if v := n.viewRef.Load(); v != nil {
				v.MarkUnreachable(addr)
			}
		},
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := n.ensureUsers(ctx); err != nil {
		n.host.Close()
		return nil, err
	}
	n.view = peers.New(n.host, peers.Config{AdminToken: cfg.AdminToken, TLS: n.peerTLS(), Logger: log, System: opts.System.Status})
	n.viewRef.Store(n.view)
	n.host.SetCatchUp(n.view.CaughtUp)
	n.plugins, err = plugins.NewHost(ctx, plugins.Config{
		CacheDir: filepath.Join(cfg.DataDir, "plugins", "cache"),
		// A standard-Go JSON Schema validator took 0.2–0.7 ms per record
		// under wazero's context checks: 32 records a call stay well inside
		// a 250 ms budget on a loaded two-core box (docs/plugins.md).
		Limits: plugins.Limits{
			MaxBatchRecords:      cmp.Or(cfg.Plugins.BatchRecords, 32),
			CallTimeout:          cfg.Plugins.CallBudget(),
			MemoryBytes:          uint64(cfg.Plugins.MemoryMiB) << 20,
			MaxInstances:         cfg.Plugins.Instances,
			FailuresBeforeFailed: cfg.Plugins.FailuresBeforeDisabled,
		},
		Logger: log.With().Str("component", "plugins").Logger(),
	})
	if err != nil {
		n.host.Close()
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	// ACLs are read from the meta shard on every check; a committed change
	// applies at the next request, on every node.
	authz := acl.New(acl.Config{Enabled: cfg.Authorization.Enabled, SuperUsers: cfg.Authorization.SuperUsers},
		func() []meta.ACL { return n.host.Meta().ACLs })
	minSession, maxSession, initialDelay := cfg.Groups.GroupTimeouts()
	// Produces stop short of a full data disk: running out inside Raft
	// would stop the node (status.DiskGuard).
	disk := status.NewDiskGuard(cfg.DataDir, cfg.Limits.MinFreeDiskBytes, log)
	disk.Register(n.metrics)
	n.broker = broker.New(n.host, broker.Config{
		Groups: groups.Config{
			MinSessionTimeout:     minSession,
			MaxSessionTimeout:     maxSession,
			InitialRebalanceDelay: initialDelay,
		},
		View:                     n.view,
		AutoCreateTopics:         *cfg.Topics.AutoCreate,
		DefaultPartitions:        cfg.Topics.DefaultPartitions,
		DefaultReplicationFactor: cfg.Topics.DefaultReplicationFactor,
		Logger:                   log,
		Metrics:                  n.metrics,
		Plugins:                  n.plugins,
		Authorizer:               authz,
		Auth:                     brokerAuth(cfg.Auth),
		Limits: broker.Limits{
			MaxRecordsPerBatch:   cfg.Limits.MaxRecordsPerBatch,
			MaxDecompressedBytes: cfg.Limits.MaxDecompressedBytes,
			Disk:                 disk,
		},
	})
	(&adminapi.API{Host: n.host, View: n.view, Token: cfg.AdminToken, Insecure: cfg.Insecure, Logger: log,
		Plugins: adminapi.PluginRuntime{Host: n.plugins, Stats: n.broker.PluginStats}, Authorizer: authz, System: opts.System}).Register(n.adminMux)
	n.host.SetRetentionPolicy(n.broker.RetentionPolicy)
	n.handler.set(n.broker)
	n.registerGauges()

	sctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(4)
	go func() { defer n.wg.Done(); n.broker.Run(sctx) }()
	go n.watchMeta(sctx.Done())
	go n.maintainControllers(sctx.Done())
	go func() { defer n.wg.Done(); n.view.Run(sctx) }()
	for _, s := range []*transport.Server{n.quic, n.kafka} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := s.Serve(sctx); err != nil && !errors.Is(err, context.Canceled) {
				n.fail(fmt.Errorf("listener %s: %w", s.Addr(), err))
			}
		}()
	}
	n.ready.Store(true)
	log.Info().Uint64("node_id", cfg.NodeID).Str("quic", n.addrs.QUIC).Str("kafka", n.addrs.Kafka).
		Str("admin", n.addrs.Admin).Str("raft", n.addrs.Raft).Str("data", cfg.DataDir).Msg("eddy node serving")
	return n, nil
}

func (n *Node) startAdmin() {
	n.adminMux = http.NewServeMux()
	status.Register(n.adminMux, n.metrics, n.readiness)
	n.admin = &http.Server{Handler: n.adminMux, ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.admin.Serve(n.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("admin listener: %w", err))
		}
	}()
}

func (n *Node) readiness() error {
	if !n.ready.Load() {
		return errors.New("starting or stopping")
	}
	if _, _, ok := n.host.Leader(meta.MetaShardID); !ok {
		return errors.New("the meta shard has no leader")
	}
	return nil
}

func (n *Node) registerGauges() {
	n.metrics.RegisterCounter("produce_duplicate_batches_total", "Batches from idempotent producers recognised as resends and not written again, by this node's replicas.", func() float64 {
		return float64(n.host.DuplicateBatches())
	})
	count := func(leading bool) float64 {
		c := 0
		for _, r := range n.host.Replicas() {
			if !r.Group && (r.Leader || !leading) {
				c++
			}
		}
		return float64(c)
	}
	n.metrics.RegisterGauge("group_coordinator_shards", "Consumer group shards this node leads, and so coordinates.", func() float64 {
		return float64(n.broker.GroupStats().Shards)
	})
	n.metrics.RegisterGauge("consumer_groups", "Consumer groups coordinated by this node.", func() float64 {
		return float64(n.broker.GroupStats().Groups)
	})
	n.metrics.RegisterGauge("consumer_group_members", "Members of the consumer groups coordinated by this node.", func() float64 {
		return float64(n.broker.GroupStats().Members)
	})
	n.metrics.Registry.MustRegister(n.broker.PluginCollector())
	n.metrics.RegisterGauge("partition_replicas", "Partition replicas hosted by this node.", func() float64 { return count(false) })
	n.metrics.RegisterGauge("partition_leaders", "Partition replicas this node leads.", func() float64 { return count(true) })
}

func (n *Node) fail(err error) {
	select {
	case n.errs <- err:
	default:
	}
}

// Errors reports failures of the node's listeners while it runs.
func (n *Node) Errors() <-chan error { return n.errs }

// Addrs returns the node's advertised addresses.
func (n *Node) Addrs() Addrs { return n.addrs }

// CAFile is the path of the CA certificate clients verify the node with.
func (n *Node) CAFile() string { return n.tls.CAFile }

// ClusterCAFile is the path of the bundle of every node's CA; it appears
// once the node has seen the node registry.
func (n *Node) ClusterCAFile() string { return filepath.Join(n.cfg.DataDir, "tls", ClusterCAFile) }

// Host returns the node's Raft host, for tests and tools in this module.
func (n *Node) Host() *raftgroups.Host { return n.host }

// Broker returns the node's Kafka API handler, for serving it on a
// listener of one's own (tests that fix a connection's principal).
func (n *Node) Broker() *broker.Broker { return n.broker }

// Metrics returns the node's metrics.
func (n *Node) Metrics() *status.Metrics { return n.metrics }

// Close stops the node gracefully: it hands the leadership of its shards
// to other replicas, lets produce requests already proposed be answered,
// then stops serving and stops Raft. Safe to call more than once.
func (n *Node) Close() {
	n.stopOnce.Do(func() {
		n.ready.Store(false)
		if n.host != nil && n.broker != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.host.HandOffLeadership(ctx)
			n.broker.WaitProduces(ctx)
			cancel()
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.closeListeners()
		n.wg.Wait()
		if n.host != nil {
			n.host.Close()
		}
		if n.plugins != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.plugins.Close(ctx)
			cancel()
		}
		n.log.Info().Msg("eddy node stopped")
	})
}

func (n *Node) closeListeners() {
	if n.quic != nil {
		n.quic.Close()
	}
	if n.kafka != nil {
		n.kafka.Close()
	}
	if n.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.admin.Shutdown(ctx)
		cancel()
	} else if n.adminLn != nil {
		n.adminLn.Close()
	}
}

// resolveRaftAddr turns port 0 into a free port: Dragonboat needs to know
// its port before it binds.
func resolveRaftAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// advertised returns explicit when set, else the bound address, with an
// unspecified host replaced by the machine's hostname.
func advertised(explicit string, bound net.Addr) string {
	if explicit != "" {
		return explicit
	}
	return advertisedHostPort(bound.String())
}

func advertisedHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// deferredHandler lets listeners be bound (and their ports known) before
// the broker exists; no connection is served before Serve runs, which is
// after the broker is set.
type deferredHandler struct{ b atomic.Pointer[broker.Broker] }

func (d *deferredHandler) set(b *broker.Broker) { d.b.Store(b) }

func (d *deferredHandler) ServeFrame(ctx context.Context, c *transport.ConnInfo, frame []byte) transport.Responder {
	if b := d.b.Load(); b != nil {
		return b.ServeFrame(ctx, c, frame)
	}
	return notReady
}

func (d *deferredHandler) ServeOversized(ctx context.Context, c *transport.ConnInfo, head []byte, size int) transport.Responder {
	if b := d.b.Load(); b != nil {
		return b.ServeOversized(ctx, c, head, size)
	}
	return notReady
}

func notReady(context.Context) ([]byte, error) { return nil, errors.New("node is not ready") }

// raftTLS turns on mutual TLS between nodes' Raft transports when every
// node shares the CA derived from cluster_secret: each presents its node
// certificate, and a peer without one signed by that CA is refused.
// Without a shared CA a node could not verify the others before Raft
// runs, so Raft stays plaintext and config validation keeps it on
// loopback unless insecure is set.
func raftTLS(cfg nodecfg.Config, t *transport.NodeTLS) *raftgroups.MutualTLS {
	if cfg.ClusterSecret == "" {
		return nil
	}
	dir := filepath.Dir(t.CAFile)
	return &raftgroups.MutualTLS{CAFile: t.CAFile, CertFile: filepath.Join(dir, transport.NodeCertFile), KeyFile: filepath.Join(dir, transport.NodeKeyFile)}
}
