package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/nodecfg"
)

func newServeCmd() *cobra.Command {
	var (
		configFile     string
		flags          nodecfg.Config
		logLevel       string
		logFormat      string
		initialCluster string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an eddy node",
		Long: `Run an eddy node until interrupted (Ctrl-C or SIGTERM).

With no flags this is a complete single-node broker for trying things out:
data in ./eddy-data, every listener on 127.0.0.1, topics created on first use
with 3 partitions:

  QUIC (Kafka over QUIC, TLS 1.3)  udp 127.0.0.1:9092
  Kafka TCP (plaintext)            tcp 127.0.0.1:9092
  admin HTTP (/metrics, /healthz)  tcp 127.0.0.1:9644
  Raft                             tcp 127.0.0.1:7100

On first start the node creates its own CA in <data>/tls/ca.crt; clients
verify the QUIC listener with it (eddy's CLI finds ./eddy-data/tls/ca.crt by
itself). A YAML config file (--config) can set everything; flags override it.

A node listening beyond loopback must encrypt and authenticate its clients
(kafka_tls, and auth: mtls or sasl per listener; see docs/security.md), or it
refuses to start and says what to set; --insecure overrides that for a lab.`,
		Example: `  eddy serve
  eddy serve --data /var/lib/eddy --kafka-addr 127.0.0.1:19092
  eddy serve --config node1.yaml --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg nodecfg.Config
			if configFile != "" {
				var err error
				if cfg, err = nodecfg.ReadFile(configFile); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("data", &cfg.DataDir, flags.DataDir)
			set("quic-addr", &cfg.Listen.QUIC, flags.Listen.QUIC)
			set("kafka-addr", &cfg.Listen.Kafka, flags.Listen.Kafka)
			set("admin-addr", &cfg.Listen.Admin, flags.Listen.Admin)
			set("raft-addr", &cfg.Listen.Raft, flags.Listen.Raft)
			set("log-level", &cfg.Log.Level, logLevel)
			set("log-format", &cfg.Log.Format, logFormat)
			set("advertise-quic", &cfg.Advertise.QUIC, flags.Advertise.QUIC)
			set("advertise-kafka", &cfg.Advertise.Kafka, flags.Advertise.Kafka)
			set("advertise-admin", &cfg.Advertise.Admin, flags.Advertise.Admin)
			set("advertise-raft", &cfg.Advertise.Raft, flags.Advertise.Raft)
			set("join", &cfg.Join, flags.Join)
			set("rack", &cfg.Rack, flags.Rack)
			set("admin-token", &cfg.AdminToken, flags.AdminToken)
			if cfg.AdminToken == "" {
				cfg.AdminToken = os.Getenv("EDDY_ADMIN_TOKEN")
			}
			set("cluster-secret", &cfg.ClusterSecret, flags.ClusterSecret)
			if cfg.ClusterSecret == "" {
				cfg.ClusterSecret = os.Getenv("EDDY_CLUSTER_SECRET")
			}
			if f.Changed("initial-cluster") {
				m, err := nodecfg.ParseInitialCluster(initialCluster)
				if err != nil {
					return fmt.Errorf("--initial-cluster: %w", err)
				}
				cfg.InitialCluster = m
			}
			if f.Changed("node-id") {
				cfg.NodeID = flags.NodeID
			}
			if f.Changed("insecure") {
				cfg.Insecure = flags.Insecure
			}
			cfg.ApplyDefaults()
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			log := appliance.NewLogger(cfg.Log, cmd.ErrOrStderr())
			ctx := cmd.Context()
			node, err := appliance.StartWith(ctx, cfg, log, appliance.Options{Version: Version})
			if err != nil {
				return err
			}
			defer node.Close()
			select {
			case <-ctx.Done():
				log.Info().Msg("shutting down")
				return nil
			case err := <-node.Errors():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "node config file (YAML); see firmware-config/README.md")
	f.StringVar(&flags.DataDir, "data", nodecfg.DefaultDataDir, "data directory")
	f.Uint64Var(&flags.NodeID, "node-id", 1, "this node's id in the cluster")
	f.StringVar(&flags.Listen.QUIC, "quic-addr", nodecfg.DefaultQUICAddr, "QUIC listen address (UDP)")
	f.StringVar(&flags.Listen.Kafka, "kafka-addr", nodecfg.DefaultKafkaAddr, "Kafka TCP listen address")
	f.StringVar(&flags.Listen.Admin, "admin-addr", nodecfg.DefaultAdminAddr, "admin HTTP listen address")
	f.StringVar(&flags.Listen.Raft, "raft-addr", nodecfg.DefaultRaftAddr, "Raft listen address")
	f.StringVar(&initialCluster, "initial-cluster", "", "founding controllers, ID=HOST:RAFTPORT,... (the same on every founding node)")
	f.StringVar(&flags.Join, "join", "", "admin URL of a running node (http://host:9644), for a node joining an existing cluster")
	f.StringVar(&flags.Rack, "rack", "", "this node's rack, room or site; consumers in the same rack read from it (KIP-392)")
	f.StringVar(&flags.AdminToken, "admin-token", "", "admin API token, the same on every node (default $EDDY_ADMIN_TOKEN)")
	f.StringVar(&flags.ClusterSecret, "cluster-secret", "", "secret shared by every node, 16+ characters; derives one CA for the whole cluster (default $EDDY_CLUSTER_SECRET)")
	f.StringVar(&flags.Advertise.QUIC, "advertise-quic", "", "QUIC address clients are told to use (default: the listen address)")
	f.StringVar(&flags.Advertise.Kafka, "advertise-kafka", "", "Kafka TCP address clients are told to use (default: the listen address)")
	f.StringVar(&flags.Advertise.Admin, "advertise-admin", "", "admin address other nodes are told to use (default: the listen address)")
	f.StringVar(&flags.Advertise.Raft, "advertise-raft", "", "Raft address other nodes are told to use (default: from --initial-cluster, else the listen address)")
	f.BoolVar(&flags.Insecure, "insecure", false, "allow listeners beyond loopback without TLS or client authentication (labs only; the config's insecure: true)")
	f.StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "", "log format: console or json (default: console on a terminal, else json)")
	return cmd
}
