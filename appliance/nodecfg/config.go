package nodecfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults for a node started with no configuration: everything on
// loopback, data in ./eddy-data (design.md §4).
const (
	DefaultDataDir    = "./eddy-data"
	DefaultQUICAddr   = "127.0.0.1:9092"
	DefaultKafkaAddr  = "127.0.0.1:9092"
	DefaultAdminAddr  = "127.0.0.1:9644"
	DefaultRaftAddr   = "127.0.0.1:7100"
	DefaultPartitions = 3
	// DefaultMaxFrameBytes is Kafka's socket.request.max.bytes.
	DefaultMaxFrameBytes = 100 << 20
)

// Config is a node's configuration.
type Config struct {
	// NodeID identifies the node in the cluster; 0 means 1.
	NodeID uint64 `yaml:"node_id"`
	// DataDir holds the node's Raft log, partitions and TLS material.
	DataDir string `yaml:"data_dir"`
	// Listen holds the addresses the node binds.
	Listen Addresses `yaml:"listen"`
	// Advertise holds the addresses clients and peers are told to use;
	// each unset one is derived from Listen.
	Advertise Addresses `yaml:"advertise"`
	// InitialCluster names the founding controllers, node id → Raft
	// address (as peers reach it). They hold the meta shard's voting
	// replicas. Unset: a cluster of this node alone. Every founding node is
	// started with the same map; restarts reuse it harmlessly.
	InitialCluster map[uint64]string `yaml:"initial_cluster"`
	// Join is the admin URL of a running node (http://host:9644). A node
	// that is not in InitialCluster asks that node to add it, then joins.
	Join string `yaml:"join"`
	// Rack labels where the node is (a rack, room or site). Consumers that
	// set the same rack read from this node's replicas (KIP-392).
	Rack string `yaml:"rack"`
	// AdminToken, when set, is required as a bearer token on the admin
	// API's /v1 routes, and sent to other nodes' admin APIs. Every node of
	// a cluster needs the same token. It lets the admin API listen beyond
	// loopback without insecure.
	AdminToken string `yaml:"admin_token"`
	// ClusterSecret, shared by every node of a cluster (16 characters or
	// more), derives the cluster's CA: every node's certificate then chains
	// to one CA, so clients trust a single ca.crt for the whole cluster,
	// including nodes that join later. Unset: each node has its own CA.
	ClusterSecret string `yaml:"cluster_secret"`
	// KafkaTLS serves the Kafka TCP listener over TLS with the node's
	// certificate. QUIC always uses TLS.
	KafkaTLS bool `yaml:"kafka_tls"`
	// Insecure allows listeners beyond loopback without TLS or without
	// client authentication (plaintext Kafka, anonymous QUIC or Kafka
	// clients, an open admin API). For labs only: anyone who can reach
	// the port can read and write every topic.
	Insecure bool          `yaml:"insecure"`
	Auth     AuthConfig    `yaml:"auth"`
	Topics   TopicsConfig  `yaml:"topics"`
	Groups   GroupsConfig  `yaml:"groups"`
	Plugins  PluginsConfig `yaml:"plugins"`
	Limits   LimitsConfig  `yaml:"limits"`
	Raft     RaftConfig    `yaml:"raft"`
	Log      LogConfig     `yaml:"log"`

	// Authorization turns ACLs on (docs/security.md).
	Authorization AuthorizationConfig `yaml:"authorization"`
}

// Listener authentication modes (auth.quic, auth.kafka).
const (
	// AuthNone lets clients in anonymously (User:ANONYMOUS); a client that
	// presents a certificate signed by a client CA is User:<its CN>.
	AuthNone = "none"
	// AuthMTLS requires a client certificate signed by a client CA at the
	// TLS handshake: the client is User:<its CN>.
	AuthMTLS = "mtls"
	// AuthSASL requires a SASL login (SCRAM-SHA-256/512 or PLAIN) before
	// any request but ApiVersions and the SASL ones: the client is
	// User:<name>. A client certificate signed by a client CA also counts.
	AuthSASL = "sasl"
)

// SASLMechanisms are the SASL mechanisms a node can offer.
var SASLMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}

// AuthConfig says how clients authenticate (docs/security.md). An
// authenticated client is the principal User:<name> for authorization.
type AuthConfig struct {
	// QUIC is how clients of the QUIC listener authenticate: none (the
	// default), mtls or sasl.
	QUIC string `yaml:"quic"`
	// Kafka is how clients of the Kafka TCP listener authenticate: none
	// (the default), mtls (needs kafka_tls) or sasl (over TLS unless the
	// listener is on loopback: PLAIN sends the password).
	Kafka string `yaml:"kafka"`
	// SASLMechanisms are offered on sasl listeners; empty means all of
	// SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN.
	SASLMechanisms []string `yaml:"sasl_mechanisms"`
	// ClientCA is a PEM file of the CAs that sign client certificates.
	// Empty means the node's CA (the cluster CA with cluster_secret),
	// which `eddy cert client` signs with.
	ClientCA string `yaml:"client_ca"`
	// AdminTLS serves the admin API over HTTPS with the node certificate;
	// a client certificate signed by a client CA authenticates as
	// User:<its CN>. In a cluster it needs cluster_secret, so that nodes
	// verify each other's admin listeners.
	AdminTLS bool `yaml:"admin_tls"`
	// Users are created when the node starts, if they do not exist yet,
	// with SCRAM-SHA-256 and SCRAM-SHA-512 credentials for the password in
	// their file: how the first user of a secured cluster comes to be.
	// Existing users are left alone, so a password changed with
	// `eddy user add` stays changed.
	Users []UserConfig `yaml:"users"`
}

// UserConfig is a SASL user created at start.
type UserConfig struct {
	Name string `yaml:"name"`
	// PasswordFile holds the password; one trailing newline is ignored.
	PasswordFile string `yaml:"password_file"`
}

// Addresses are host:port pairs, one per listener.
type Addresses struct {
	QUIC  string `yaml:"quic"`
	Kafka string `yaml:"kafka"`
	Admin string `yaml:"admin"`
	Raft  string `yaml:"raft"`
}

// TopicsConfig sets how topics are created.
type TopicsConfig struct {
	// AutoCreate creates a topic on first use (produce, or a metadata
	// request that allows it). Unset means true.
	AutoCreate *bool `yaml:"auto_create"`
	// DefaultPartitions for auto-created topics and requests that leave it
	// to the broker; 0 means 3.
	DefaultPartitions int32 `yaml:"default_partitions"`
	// DefaultReplicationFactor likewise; 0 means 1.
	DefaultReplicationFactor int16 `yaml:"default_replication_factor"`
	// Defaults are topic config defaults (Kafka topic config names, e.g.
	// retention.ms) for topics that do not override them. Keys and values
	// are checked when the node starts, against the configs it supports.
	Defaults map[string]string `yaml:"defaults"`
	// RetentionCheckInterval is how often retention runs (Go duration,
	// e.g. "30s"); empty means 30s.
	RetentionCheckInterval string `yaml:"retention_check_interval"`
}

// GroupsConfig sets how consumer groups are kept.
// PluginsConfig bounds what each Wasm plugin may use (docs/plugins.md).
// Zero values take the defaults.
type PluginsConfig struct {
	// CallTimeout is the CPU budget of one call into a plugin (Go
	// duration; default 250ms). A call past it is stopped and counted as
	// a failure.
	CallTimeout string `yaml:"call_timeout"`
	// BatchRecords is how many records one call gets; bigger produce
	// batches take several calls (default 32).
	BatchRecords int `yaml:"batch_records"`
	// MemoryMiB caps each instance's memory (default 64).
	MemoryMiB int `yaml:"memory_mib"`
	// Instances is how many warm instances a plugin keeps per topic
	// setting (default min(cores, 4)).
	Instances int `yaml:"instances"`
	// FailuresBeforeDisabled: consecutive failures that disable a plugin
	// on this node (default 5).
	FailuresBeforeDisabled int `yaml:"failures_before_disabled"`
}

// CallBudget returns plugins.call_timeout, 250ms when unset.
func (p PluginsConfig) CallBudget() time.Duration {
	if d, err := time.ParseDuration(p.CallTimeout); err == nil && d > 0 {
		return d
	}
	return 250 * time.Millisecond
}

type GroupsConfig struct {
	// Shards is how many Raft groups hold consumer groups and committed
	// offsets (a group's shard is a hash of its id). Fixed when the
	// cluster forms; later changes are ignored. 0 means 4.
	Shards int `yaml:"shards"`
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// consumer may ask for (Go durations; empty means Kafka's 6s and 30m).
	// A member silent for its session timeout is removed and its
	// partitions move to the others.
	MinSessionTimeout string `yaml:"min_session_timeout"`
	MaxSessionTimeout string `yaml:"max_session_timeout"`
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members to arrive, so a fleet starting together
	// lands in one generation (Go duration; empty means 3s, "0s" none).
	InitialRebalanceDelay string `yaml:"initial_rebalance_delay"`
}

// GroupTimeouts returns the parsed session bounds and initial rebalance
// delay; zero means the default, and a delay of "0s" is returned as -1.
func (g GroupsConfig) GroupTimeouts() (minSession, maxSession, initialDelay time.Duration) {
	minSession, _ = time.ParseDuration(g.MinSessionTimeout)
	maxSession, _ = time.ParseDuration(g.MaxSessionTimeout)
	if g.InitialRebalanceDelay != "" {
		initialDelay, _ = time.ParseDuration(g.InitialRebalanceDelay)
		if initialDelay == 0 {
			initialDelay = -1
		}
	}
	return minSession, maxSession, initialDelay
}

// RaftConfig tunes Raft.
type RaftConfig struct {
	// TickMillis is the Raft tick; 0 means 100. Every partition replica
	// ticks, so a shorter tick costs idle CPU with many partitions.
	TickMillis uint64 `yaml:"tick_ms"`
	// SnapshotEntries is how many produce batches a partition applies
	// between checkpoints (after which Raft compacts its log); 0 means 1000.
	SnapshotEntries uint64 `yaml:"snapshot_entries"`
	// HeartbeatTicks is how often a leader heartbeats, in ticks; 0 means 2.
	HeartbeatTicks uint64 `yaml:"heartbeat_ticks"`
	// ElectionTicks is how long followers wait for a leader before an
	// election, in ticks; 0 means five heartbeats (1 s with the defaults).
	ElectionTicks uint64 `yaml:"election_ticks"`
}

// LogConfig sets logging.
type LogConfig struct {
	// Level is trace, debug, info, warn or error; empty means info.
	Level string `yaml:"level"`
	// Format is "console" (human) or "json"; empty means console on a
	// terminal and json otherwise.
	Format string `yaml:"format"`
}

// Load reads a YAML config file. Unknown keys are errors, so a typo is
// reported instead of silently ignored. Defaults are applied and the
// result validated.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ReadFile decodes a YAML config file without applying defaults or
// validating, for callers that override fields (command-line flags) first.
func ReadFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := decode(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func decode(b []byte) (Config, error) {
	var c Config
	if err := DecodeYAML(b, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// DecodeYAML decodes b into v, refusing keys v has no field for (a typo
// is an error, not a silently ignored setting). Empty input leaves v as
// is: the all-defaults config.
func DecodeYAML(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Parse decodes YAML, applies defaults and validates.
func Parse(b []byte) (Config, error) {
	c, err := decode(b)
	if err != nil {
		return Config{}, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ApplyDefaults fills every unset field.
func (c *Config) ApplyDefaults() {
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.Listen.QUIC, DefaultQUICAddr)
	def(&c.Listen.Kafka, DefaultKafkaAddr)
	def(&c.Listen.Admin, DefaultAdminAddr)
	def(&c.Listen.Raft, DefaultRaftAddr)
	if c.Topics.AutoCreate == nil {
		t := true
		c.Topics.AutoCreate = &t
	}
	if c.Topics.DefaultPartitions == 0 {
		c.Topics.DefaultPartitions = DefaultPartitions
	}
	if c.Topics.DefaultReplicationFactor == 0 {
		c.Topics.DefaultReplicationFactor = 1
	}
	c.Limits.applyDefaults()
	if c.Raft.TickMillis == 0 {
		c.Raft.TickMillis = 100
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// Validate checks the config and names the first bad field.
func (c *Config) Validate() error {
	for _, a := range []struct{ field, addr string }{
		{"listen.quic", c.Listen.QUIC}, {"listen.kafka", c.Listen.Kafka},
		{"listen.admin", c.Listen.Admin}, {"listen.raft", c.Listen.Raft},
	} {
		if err := checkAddr(a.addr, true); err != nil {
			return fmt.Errorf("%s: %w", a.field, err)
		}
	}
	for _, a := range []struct{ field, addr string }{
		{"advertise.quic", c.Advertise.QUIC}, {"advertise.kafka", c.Advertise.Kafka},
		{"advertise.admin", c.Advertise.Admin}, {"advertise.raft", c.Advertise.Raft},
	} {
		if a.addr == "" {
			continue
		}
		if err := checkAddr(a.addr, false); err != nil {
			return fmt.Errorf("%s: %w", a.field, err)
		}
	}
	for id, addr := range c.InitialCluster {
		if id == 0 {
			return errors.New("initial_cluster: node id 0 is not allowed; ids start at 1")
		}
		if err := checkAddr(addr, false); err != nil {
			return fmt.Errorf("initial_cluster[%d]: %w", id, err)
		}
	}
	if len(c.InitialCluster) > 0 {
		_, founder := c.InitialCluster[c.NodeID]
		switch {
		case !founder && c.Join == "":
			return fmt.Errorf("initial_cluster: node %d is not listed; list it, or set join to a running node's admin URL to join later", c.NodeID)
		case founder && c.Join != "":
			return fmt.Errorf("join: node %d is a founding member in initial_cluster; founding members do not join", c.NodeID)
		case founder && c.Advertise.Raft != "" && c.Advertise.Raft != c.InitialCluster[c.NodeID]:
			return fmt.Errorf("advertise.raft: %s differs from initial_cluster[%d] %s; peers use the latter", c.Advertise.Raft, c.NodeID, c.InitialCluster[c.NodeID])
		}
	}
	if c.ClusterSecret != "" && len(c.ClusterSecret) < 16 {
		return fmt.Errorf("cluster_secret: %d characters is too short; use at least 16 (e.g. openssl rand -hex 16)", len(c.ClusterSecret))
	}
	if c.Join != "" && !strings.HasPrefix(c.Join, "http://") && !strings.HasPrefix(c.Join, "https://") {
		return fmt.Errorf("join: %q is not an admin URL (http://host:9644)", c.Join)
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.Authorization.validate(); err != nil {
		return err
	}
	if c.Topics.DefaultPartitions < 1 {
		return fmt.Errorf("topics.default_partitions: %d must be at least 1", c.Topics.DefaultPartitions)
	}
	if c.Topics.DefaultReplicationFactor < 1 {
		return fmt.Errorf("topics.default_replication_factor: %d must be at least 1", c.Topics.DefaultReplicationFactor)
	}
	if c.Topics.RetentionCheckInterval != "" {
		if _, err := time.ParseDuration(c.Topics.RetentionCheckInterval); err != nil {
			return fmt.Errorf("topics.retention_check_interval: %w", err)
		}
	}
	if c.Groups.Shards < 0 || c.Groups.Shards > 256 {
		return fmt.Errorf("groups.shards: %d is outside 1..256", c.Groups.Shards)
	}
	for _, d := range []struct{ key, val string }{
		{"groups.min_session_timeout", c.Groups.MinSessionTimeout},
		{"groups.max_session_timeout", c.Groups.MaxSessionTimeout},
		{"groups.initial_rebalance_delay", c.Groups.InitialRebalanceDelay},
	} {
		if d.val == "" {
			continue
		}
		if v, err := time.ParseDuration(d.val); err != nil || v < 0 {
			return fmt.Errorf("%s: %q is not a duration such as 6s or 1m", d.key, d.val)
		}
	}
	if minS, maxS, _ := c.Groups.GroupTimeouts(); minS > 0 && maxS > 0 && minS > maxS {
		return fmt.Errorf("groups.min_session_timeout %s is above groups.max_session_timeout %s", minS, maxS)
	}
	if c.Plugins.CallTimeout != "" {
		if d, err := time.ParseDuration(c.Plugins.CallTimeout); err != nil || d <= 0 || d > time.Minute {
			return fmt.Errorf("plugins.call_timeout: %q is not a duration between 1ms and 1m", c.Plugins.CallTimeout)
		}
	}
	if c.Plugins.BatchRecords < 0 || c.Plugins.BatchRecords > 100000 || c.Plugins.MemoryMiB < 0 || c.Plugins.MemoryMiB > 2048 ||
		c.Plugins.Instances < 0 || c.Plugins.Instances > 64 || c.Plugins.FailuresBeforeDisabled < 0 {
		return fmt.Errorf("plugins: batch_records (0..100000), memory_mib (0..2048), instances (0..64) and failures_before_disabled must be in range")
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if c.Raft.TickMillis < 5 || c.Raft.TickMillis > 1000 {
		return fmt.Errorf("raft.tick_ms: %d is outside 5..1000", c.Raft.TickMillis)
	}
	if c.Raft.ElectionTicks != 0 && c.Raft.ElectionTicks < 3*max(c.Raft.HeartbeatTicks, 1) {
		return fmt.Errorf("raft.election_ticks: %d must be at least three heartbeats (raft.heartbeat_ticks %d)", c.Raft.ElectionTicks, c.Raft.HeartbeatTicks)
	}
	switch strings.ToLower(c.Log.Level) {
	case "trace", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "console", "json":
	default:
		return fmt.Errorf("log.format: %q is not console or json", c.Log.Format)
	}
	return nil
}

// validateAuth checks the auth section and that every listener beyond
// loopback encrypts and authenticates (unless insecure).
func (c *Config) validateAuth() error {
	a := c.Auth
	for _, m := range []struct{ field, mode string }{{"auth.quic", a.QUIC}, {"auth.kafka", a.Kafka}} {
		switch m.mode {
		case "", AuthNone, AuthMTLS, AuthSASL:
		default:
			return fmt.Errorf("%s: %q is not none, mtls or sasl", m.field, m.mode)
		}
	}
	if a.Kafka == AuthMTLS && !c.KafkaTLS {
		return errors.New("auth.kafka: mtls needs TLS on the Kafka listener; set kafka_tls: true")
	}
	for i, m := range a.SASLMechanisms {
		if !slices.Contains(SASLMechanisms, m) {
			return fmt.Errorf("auth.sasl_mechanisms: %q is not one of %s", m, strings.Join(SASLMechanisms, ", "))
		}
		if slices.Contains(a.SASLMechanisms[:i], m) {
			return fmt.Errorf("auth.sasl_mechanisms: %s is listed twice", m)
		}
	}
	for i, u := range a.Users {
		switch {
		case u.Name == "" || len(u.Name) > 256 || strings.ContainsFunc(u.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return fmt.Errorf("auth.users[%d]: name %q must be 1 to 256 printable characters", i, u.Name)
		case u.PasswordFile == "":
			return fmt.Errorf("auth.users[%d] (%s): set password_file", i, u.Name)
		case slices.ContainsFunc(a.Users[:i], func(o UserConfig) bool { return o.Name == u.Name }):
			return fmt.Errorf("auth.users: %s is listed twice", u.Name)
		}
	}
	if a.AdminTLS {
		if c.ClusterSecret == "" && (len(c.InitialCluster) > 1 || c.Join != "") {
			return errors.New("auth.admin_tls: nodes of a cluster must verify each other's admin listeners; set cluster_secret (the same on every node)")
		}
		if strings.HasPrefix(c.Join, "http://") {
			return fmt.Errorf("join: %s must be an https:// URL: the admin API serves HTTPS with auth.admin_tls", c.Join)
		}
	}
	if c.Insecure {
		return nil
	}
	if !c.KafkaTLS && !IsLoopback(c.Listen.Kafka) {
		return fmt.Errorf("listen.kafka: %s is not a loopback address and the Kafka TCP listener is plaintext; set kafka_tls: true, or insecure: true for a lab", c.Listen.Kafka)
	}
	if (a.Kafka == "" || a.Kafka == AuthNone) && !IsLoopback(c.Listen.Kafka) {
		return fmt.Errorf("listen.kafka: %s is not a loopback address and its clients are not authenticated; set auth.kafka: sasl (users with passwords: auth.users, eddy user add) or auth.kafka: mtls (client certificates: eddy cert client), or insecure: true for a lab", c.Listen.Kafka)
	}
	if (a.QUIC == "" || a.QUIC == AuthNone) && !IsLoopback(c.Listen.QUIC) {
		return fmt.Errorf("listen.quic: %s is not a loopback address and its clients are not authenticated; set auth.quic: mtls (client certificates: eddy cert client) or auth.quic: sasl (users with passwords: auth.users, eddy user add), or insecure: true for a lab", c.Listen.QUIC)
	}
	if !IsLoopback(c.Listen.Raft) && c.ClusterSecret == "" {
		return fmt.Errorf("listen.raft: %s is not a loopback address and Raft between nodes would be plaintext and unauthenticated; set cluster_secret (the same on every node: nodes then authenticate each other with mutual TLS), or insecure: true for a lab", c.Listen.Raft)
	}
	if !IsLoopback(c.Listen.Admin) && c.AdminToken == "" && !a.AdminTLS {
		return fmt.Errorf("listen.admin: %s is not a loopback address and the admin API is open; set admin_token (the same on every node) or auth.admin_tls: true (client certificates), or insecure: true for a lab", c.Listen.Admin)
	}
	return nil
}

// checkAddr accepts host:port; a listen address may leave the host empty
// or use port 0, an advertised one may not.
func checkAddr(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has port %q; want 0-65535", addr, port)
	}
	if !listen {
		if host == "" || p == 0 {
			return fmt.Errorf("%q must name a host and a port clients can reach", addr)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("%q is an unspecified address; advertise one clients can reach", addr)
		}
	}
	return nil
}

// IsLoopback reports whether a host:port listens only on loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TopicDefaults returns Topics.Defaults (never nil).
func (c *Config) TopicDefaults() map[string]string {
	if c.Topics.Defaults == nil {
		return map[string]string{}
	}
	return c.Topics.Defaults
}

// RetentionInterval returns Topics.RetentionCheckInterval, 0 when unset.
func (c *Config) RetentionInterval() time.Duration {
	d, _ := time.ParseDuration(c.Topics.RetentionCheckInterval)
	return d
}

// ParseInitialCluster parses "1=host:port,2=host:port" (the command-line
// form of InitialCluster).
func ParseInitialCluster(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("initial cluster entry %q: want ID=HOST:RAFTPORT with ID >= 1", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("initial cluster lists node %d twice", id)
		}
		out[id] = addr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("initial cluster %q names no nodes", s)
	}
	return out, nil
}

// AuthorizationConfig turns ACL checks on. ACLs themselves are stored in
// the cluster (eddy acl add), not here.
type AuthorizationConfig struct {
	// Enabled checks every Kafka request, and plugin uploads and deletes
	// on the admin API, against the cluster's ACLs; a request no ACL
	// allows is refused. Off (the default) allows everything.
	Enabled bool `yaml:"enabled"`
	// SuperUsers are principals allowed everything without ACLs, e.g.
	// "User:ops". User:admin (the admin token's principal) always is.
	SuperUsers []string `yaml:"super_users"`
}

func (a AuthorizationConfig) validate() error {
	for _, p := range a.SuperUsers {
		typ, name, ok := strings.Cut(p, ":")
		if !ok || typ == "" || name == "" {
			return fmt.Errorf("authorization.super_users: %q must be a principal like User:ops", p)
		}
	}
	return nil
}
