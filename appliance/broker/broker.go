package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/appliance/groups"
	"github.com/eddybroker/eddy/appliance/status"
	"github.com/eddybroker/eddy/plugins"
	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/transport"
)

// Config configures the Kafka API of a node.
type Config struct {
	// AutoCreateTopics creates a topic on first produce or on a Metadata
	// request that allows it (Kafka's auto.create.topics.enable).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it to the broker (num.partitions).
	DefaultPartitions int32
	// DefaultReplicationFactor likewise (default.replication.factor).
	DefaultReplicationFactor int16
	// Groups tunes the group coordinators (session timeout bounds, the
	// initial rebalance delay).
	Groups groups.Config
	// View says which nodes are alive and which replicas are in sync;
	// nil means a node alone: everything it hosts is alive and in sync.
	View    ClusterView
	Logger  zerolog.Logger
	Metrics *status.Metrics
	// Plugins runs the Wasm plugins topics attach; nil refuses topics that
	// attach one.
	Plugins *plugins.Host
	// Auth says which listeners require SASL, and with which mechanisms.
	Auth Auth
	// Authorizer checks every request against the cluster's ACLs; nil or
	// disabled allows everything.
	Authorizer *acl.Authorizer
	// Limits bound what one produce may ask (limits.go).
	Limits Limits
}

// ClusterView is what the broker knows of other nodes beyond Raft.
type ClusterView interface {
	// Alive reports whether a node is up, as far as this node can tell.
	Alive(node uint64) bool
	// InSync returns the in-sync subset of a shard's replicas, in order.
	InSync(shard, leader uint64, replicas []uint64) []uint64
	// Leader returns a shard's leader and term as other nodes last
	// reported them, for shards with no replica here.
	Leader(shard uint64) (leader, term uint64, ok bool)
}

// soloView is the view of a node without peers.
type soloView struct{}

func (soloView) Alive(uint64) bool                              { return true }
func (soloView) InSync(_, _ uint64, replicas []uint64) []uint64 { return replicas }
func (soloView) Leader(uint64) (uint64, uint64, bool)           { return 0, 0, false }

// Listener names the broker recognises in transport.ConnInfo.Listener, so
// Metadata answers a QUIC client with QUIC addresses and a TCP client with
// TCP ones.
const (
	ListenerQUIC  = "quic"
	ListenerKafka = "kafka"
)

// Broker serves Kafka requests for one node. It implements
// transport.Handler and is safe for concurrent use.
type Broker struct {
	cfg  Config
	host *raftgroups.Host
	log  zerolog.Logger
	m    *status.Metrics

	// inflight counts produce requests proposed but not yet answered.
	inflight atomic.Int64
	// coords are the group coordinators of the group shards this node leads.
	coords *coordinators
	// plugins are the plugins loaded for topics' attachments.
	plugins pluginCache
	// auth runs SASL exchanges (sasl.go).
	auth *authenticator
}

// Run serves the group coordinators of the group shards this node leads,
// and releases plugins topics no longer attach, until ctx ends; the node
// runs it for the broker's life.
func (b *Broker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.sweepPlugins(ctx)
	}()
	b.coords.run(ctx)
	wg.Wait()
}

// WaitProduces waits until every produce request already proposed has
// been answered, or ctx ends. A stopping node calls it after handing off
// leadership, so writes that committed are acknowledged rather than
// retried by their producers (which would duplicate them).
func (b *Broker) WaitProduces(ctx context.Context) {
	for b.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

var _ transport.Handler = (*Broker)(nil)

// New returns a broker serving the node's raft groups.
func New(host *raftgroups.Host, cfg Config) *Broker {
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 3
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 1
	}
	if cfg.Metrics == nil {
		cfg.Metrics = status.NewMetrics()
	}
	if cfg.View == nil {
		cfg.View = soloView{}
	}
	b := &Broker{cfg: cfg, host: host, log: cfg.Logger, m: cfg.Metrics}
	b.auth = newAuthenticator(cfg.Auth, b.scramCredential, cfg.Logger)
	b.coords = newCoordinators(b, cfg.Groups)
	return b
}

// versionRange is the span of versions eddy serves for one API key.
type versionRange struct{ min, max int16 }

// supported lists every API eddy answers and the versions it serves. The
// ranges are advertised by ApiVersions; a request outside them gets
// UNSUPPORTED_VERSION. Produce starts at v3 and Fetch at v4 because older
// versions carry the pre-0.11 message formats eddy does not store.
var supported = map[int16]versionRange{
	0:  {3, 13}, // Produce
	1:  {4, 18}, // Fetch
	2:  {1, 11}, // ListOffsets
	3:  {0, 13}, // Metadata
	17: {0, 1},  // SaslHandshake
	18: {0, 5},  // ApiVersions
	19: {0, 7},  // CreateTopics
	20: {0, 6},  // DeleteTopics
	8:  {0, 9},  // OffsetCommit
	9:  {0, 9},  // OffsetFetch
	10: {0, 4},  // FindCoordinator
	11: {0, 9},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	15: {0, 5},  // DescribeGroups
	16: {0, 4},  // ListGroups
	21: {0, 2},  // DeleteRecords
	22: {0, 4},  // InitProducerId
	29: {0, 3},  // DescribeAcls
	30: {0, 3},  // CreateAcls
	31: {0, 3},  // DeleteAcls
	23: {0, 4},  // OffsetForLeaderEpoch
	32: {0, 4},  // DescribeConfigs
	33: {0, 2},  // AlterConfigs
	37: {0, 3},  // CreatePartitions
	44: {0, 1},  // IncrementalAlterConfigs
	42: {0, 2},  // DeleteGroups
	47: {0, 0},  // OffsetDelete
	60: {0, 2},  // DescribeCluster
	36: {0, 2},  // SaslAuthenticate
	50: {0, 0},  // DescribeUserScramCredentials
	51: {0, 0},  // AlterUserScramCredentials
}

const apiVersionsKey = 18

// reqCtx is what a handler knows about the request it serves.
type reqCtx struct {
	conn     *transport.ConnInfo
	hdr      requestHeader
	api      string
	received time.Time
	// close ends the connection after this request's response (a failed
	// SASL authentication).
	close bool
}

// ServeFrame decodes one request frame and returns its responder. The
// frame is only valid during the call.
func (b *Broker) ServeFrame(ctx context.Context, c *transport.ConnInfo, frame []byte) transport.Responder {
	received := time.Now()
	if r, ok := b.saslGate(c, frame); ok {
		return r
	}
	h, err := parseHeaderPrefix(frame)
	if err != nil {
		// Without a correlation id no response can be matched to this
		// request: closing the connection is the only honest answer.
		return failConn(fmt.Errorf("broker: unreadable request header from %v: %w", c.RemoteAddr, err))
	}
	rc := &reqCtx{conn: c, hdr: h, api: kmsg.NameForKey(h.key), received: received}
	if rc.api == "" {
		rc.api = fmt.Sprintf("Unknown(%d)", h.key)
	}
	rng, known := supported[h.key]
	if !known || h.version < rng.min || h.version > rng.max {
		return b.unsupported(rc, known)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if err := skipHeaderTags(frame, &rc.hdr); err != nil {
			return b.malformed(rc, err)
		}
	}
	body := frame[rc.hdr.bodyOffset:]
	if h.key == 0 {
		return b.serveProduce(ctx, rc, req.(*kmsg.ProduceRequest), body)
	}
	// The handler runs later, from the connection's writer; byte fields
	// decoded by kmsg alias the frame, so give it its own copy.
	if err := req.ReadFrom(append([]byte(nil), body...)); err != nil {
		return b.malformed(rc, err)
	}
	return func(ctx context.Context) ([]byte, error) {
		resp := b.handle(ctx, rc, req)
		return b.finish(rc, resp), rc.closeAfter()
	}
}

// handle runs every API except Produce.
func (b *Broker) handle(ctx context.Context, rc *reqCtx, req kmsg.Request) kmsg.Response {
	if resp := b.gateCredentialAPIs(rc, req); resp != nil {
		return resp
	}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return b.handleFetch(ctx, rc, r)
	case *kmsg.ListOffsetsRequest:
		return b.handleListOffsets(ctx, rc, r)
	case *kmsg.MetadataRequest:
		return b.handleMetadata(ctx, rc, r)
	case *kmsg.ApiVersionsRequest:
		return b.handleApiVersions(rc, r)
	case *kmsg.CreateTopicsRequest:
		return b.handleCreateTopics(ctx, rc, r)
	case *kmsg.DeleteTopicsRequest:
		return b.handleDeleteTopics(ctx, rc, r)
	case *kmsg.DeleteRecordsRequest:
		return b.handleDeleteRecords(ctx, rc, r)
	case *kmsg.OffsetForLeaderEpochRequest:
		return b.handleOffsetForLeaderEpoch(rc, r)
	case *kmsg.DescribeConfigsRequest:
		return b.handleDescribeConfigs(rc, r)
	case *kmsg.AlterConfigsRequest:
		return b.handleAlterConfigs(ctx, rc, r)
	case *kmsg.CreatePartitionsRequest:
		return b.handleCreatePartitions(ctx, rc, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		return b.handleIncrementalAlterConfigs(ctx, rc, r)
	case *kmsg.DescribeClusterRequest:
		return b.handleDescribeCluster(rc, r)
	case *kmsg.InitProducerIDRequest:
		return b.handleInitProducerID(ctx, rc, r)
	case *kmsg.FindCoordinatorRequest:
		return b.handleFindCoordinator(rc, r)
	case *kmsg.JoinGroupRequest:
		return b.handleJoinGroup(ctx, rc, r)
	case *kmsg.SyncGroupRequest:
		return b.handleSyncGroup(ctx, rc, r)
	case *kmsg.HeartbeatRequest:
		return b.handleHeartbeat(ctx, rc, r)
	case *kmsg.LeaveGroupRequest:
		return b.handleLeaveGroup(ctx, rc, r)
	case *kmsg.OffsetCommitRequest:
		return b.handleOffsetCommit(ctx, rc, r)
	case *kmsg.OffsetFetchRequest:
		return b.handleOffsetFetch(rc, r)
	case *kmsg.OffsetDeleteRequest:
		return b.handleOffsetDelete(ctx, rc, r)
	case *kmsg.DescribeGroupsRequest:
		return b.handleDescribeGroups(rc, r)
	case *kmsg.ListGroupsRequest:
		return b.handleListGroups(rc, r)
	case *kmsg.DeleteGroupsRequest:
		return b.handleDeleteGroups(ctx, rc, r)
	case *kmsg.DescribeACLsRequest:
		return b.handleDescribeACLs(ctx, rc, r)
	case *kmsg.CreateACLsRequest:
		return b.handleCreateACLs(ctx, rc, r)
	case *kmsg.DeleteACLsRequest:
		return b.handleDeleteACLs(ctx, rc, r)
	case *kmsg.SASLHandshakeRequest:
		return b.handleSaslHandshake(rc, r)
	case *kmsg.SASLAuthenticateRequest:
		return b.handleSaslAuthenticate(rc, r)
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		return b.handleDescribeUserScramCredentials(rc, r)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		return b.handleAlterUserScramCredentials(ctx, rc, r)
	}
	// supported and this switch must list the same keys.
	panic(fmt.Sprintf("broker: no handler for supported API %d", req.Key()))
}

// finish encodes a response for rc and records its metrics.
func (b *Broker) finish(rc *reqCtx, resp kmsg.Response) []byte {
	resp.SetVersion(rc.hdr.version)
	out := make([]byte, 0, 256)
	out = binary.BigEndian.AppendUint32(out, uint32(rc.hdr.corrID))
	// Response header v1 (tagged fields) goes with flexible versions,
	// except ApiVersions, whose response header is always v0 so a client
	// can read it before it knows what the broker supports.
	if resp.IsFlexible() && rc.hdr.key != apiVersionsKey {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	b.m.Requests.WithLabelValues(rc.api).Inc()
	b.m.RequestSeconds.WithLabelValues(rc.api).Observe(time.Since(rc.received).Seconds())
	return out
}

// countError records an error code returned to a client.
func (b *Broker) countError(rc *reqCtx, code int16) {
	if code == 0 {
		return
	}
	name := "UNKNOWN"
	if e := kerr.ErrorForCode(code); e != nil {
		if ke, ok := e.(*kerr.Error); ok {
			name = ke.Message
		}
	}
	b.m.RequestErrors.WithLabelValues(rc.api, name).Inc()
}

func failConn(err error) transport.Responder {
	return func(context.Context) ([]byte, error) { return nil, err }
}

func ready(b []byte) transport.Responder {
	return func(context.Context) ([]byte, error) { return b, nil }
}

// unsupported answers a request whose API key or version eddy does not
// serve. ApiVersions gets a v0 response listing what is supported, as
// Kafka does, so the client can retry with a version both sides know.
// Anything else gets its correlation id and UNSUPPORTED_VERSION, and the
// connection stays open.
func (b *Broker) unsupported(rc *reqCtx, knownKey bool) transport.Responder {
	code := kerr.UnsupportedVersion.Code
	b.countError(rc, code)
	if rc.hdr.key == apiVersionsKey {
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = code
		resp.ApiKeys = apiKeys()
		rc.hdr.version = 0
		return ready(b.finish(rc, resp))
	}
	what := "unknown API key"
	if knownKey {
		r := supported[rc.hdr.key]
		what = fmt.Sprintf("unsupported version (eddy serves v%d-v%d)", r.min, r.max)
	}
	b.log.Warn().Str("api", rc.api).Int16("key", rc.hdr.key).Int16("version", rc.hdr.version).
		Str("client_id", rc.hdr.clientID).Stringer("remote", rc.conn.RemoteAddr).
		Msg("answered request with UNSUPPORTED_VERSION: " + what)
	out := binary.BigEndian.AppendUint32(nil, uint32(rc.hdr.corrID))
	out = binary.BigEndian.AppendUint16(out, uint16(code))
	return ready(out)
}

// malformed answers a request whose body does not decode: a well-formed
// response of the request's type, with INVALID_REQUEST in its top-level
// error code where it has one. Kafka would drop the connection; eddy keeps
// it and logs why.
func (b *Broker) malformed(rc *reqCtx, err error) transport.Responder {
	code := kerr.InvalidRequest.Code
	b.countError(rc, code)
	b.log.Warn().Err(err).Str("api", rc.api).Int16("version", rc.hdr.version).
		Str("client_id", rc.hdr.clientID).Stringer("remote", rc.conn.RemoteAddr).
		Msg("malformed request answered with INVALID_REQUEST")
	resp := kmsg.ResponseForKey(rc.hdr.key)
	setTopLevelError(resp, code, "eddy could not decode this request: "+err.Error())
	return ready(b.finish(rc, resp))
}

// setTopLevelError sets ErrorCode (and ErrorMessage when present) on
// response types that have them. Only used on the error path.
func setTopLevelError(resp kmsg.Response, code int16, msg string) {
	v := reflect.ValueOf(resp).Elem()
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	if f := v.FieldByName("ErrorMessage"); f.IsValid() && f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.String {
		f.Set(reflect.ValueOf(&msg))
	}
}

// ServeOversized answers a frame over the size limit. Its head holds the
// request header, so the client gets a response it can match: a
// MESSAGE_TOO_LARGE error for a produce (per partition would need the
// body, which was not read), otherwise like a malformed request.
func (b *Broker) ServeOversized(ctx context.Context, c *transport.ConnInfo, head []byte, size int) transport.Responder {
	h, err := parseHeaderPrefix(head)
	if err != nil {
		return failConn(fmt.Errorf("broker: oversized frame of %d bytes with an unreadable header from %v", size, c.RemoteAddr))
	}
	rc := &reqCtx{conn: c, hdr: h, api: kmsg.NameForKey(h.key), received: time.Now()}
	rng, known := supported[h.key]
	if !known || h.version < rng.min || h.version > rng.max {
		return b.unsupported(rc, known)
	}
	b.log.Warn().Int("bytes", size).Str("api", rc.api).Str("client_id", h.clientID).Stringer("remote", c.RemoteAddr).
		Msg("request frame over the size limit was discarded")
	if h.key == 0 {
		return b.oversizedProduce(rc, head, size)
	}
	resp := kmsg.ResponseForKey(h.key)
	setTopLevelError(resp, kerr.MessageTooLarge.Code, fmt.Sprintf("request of %d bytes exceeds the broker's frame limit", size))
	b.countError(rc, kerr.MessageTooLarge.Code)
	return ready(b.finish(rc, resp))
}
