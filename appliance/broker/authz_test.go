package broker_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddybroker/eddy/appliance/broker"
	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/transport"
)

// These tests exercise authorization, not authentication: each client's
// connections are served by the nodes' real brokers on listeners of the
// test's own that give every connection a fixed principal, standing in
// for a verified client certificate or SASL login. Everything else (Raft,
// the meta shard, kgo and kadm) is real.

const rootUser = "User:root"

// withAuthorization turns ACL checks on, with root as super user.
func withAuthorization(c *nodecfg.Config) {
	c.Authorization = nodecfg.AuthorizationConfig{Enabled: true, SuperUsers: []string{rootUser}}
}

// asPrincipal returns a kgo client that is principal on every node: its
// connection to a node's Kafka address goes to that node's broker through
// a listener that fixes the principal.
func asPrincipal(t *testing.T, principal string, nodes []*nodetest.Node, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(principalOpts(t, principal, nodes), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// principalOpts are the kgo options that make a client principal on nodes.
func principalOpts(t *testing.T, principal string, nodes []*nodetest.Node) []kgo.Opt {
	t.Helper()
	route := map[string]string{}
	for _, n := range nodes {
		route[n.Addrs().Kafka] = principalListener(t, principal, n)
	}
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		to, ok := route[host]
		if !ok {
			return nil, errors.New("test: no principal listener for " + host)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}
	return []kgo.Opt{kgo.SeedBrokers(nodes[0].Addrs().Kafka), kgo.Dialer(dial),
		kgo.RetryTimeout(3 * time.Second), kgo.RecordDeliveryTimeout(5 * time.Second)}
}

// principalListener serves n's broker on a new listener that makes every
// connection principal, and returns its address.
func principalListener(t *testing.T, principal string, n *nodetest.Node) string {
	t.Helper()
	srv, err := transport.ListenTCP("127.0.0.1:0", nil, transport.ServerConfig{
		Name: broker.ListenerKafka, Handler: n.Broker(), Logger: zerolog.Nop(),
		OnConnect: func(c *transport.ConnInfo) { c.SetPrincipal(principal) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-done })
	return srv.Addr().String()
}

// pinnedTo returns a client that is principal and talks to node n only:
// every address leads to n's broker, whichever node kgo picks.
func pinnedTo(t *testing.T, principal string, n *nodetest.Node) *kgo.Client {
	t.Helper()
	to := principalListener(t, principal, n)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addrs().Kafka), kgo.Dialer(dial), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceErr(ctx context.Context, cl *kgo.Client, topic string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// fetchCode sends a raw Fetch for partition 0 of topic and returns its
// error code. kgo sends the newest version, which names topics by id.
func fetchCode(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 10
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicIDs[topic]
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(1))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// topicIDs are the ids of the topics the tests create, for fetchCode.
var topicIDs = map[string][16]byte{}

func createTopics(ctx context.Context, t *testing.T, adm *kadm.Client, partitions int32, rf int16, names ...string) {
	t.Helper()
	for _, name := range names {
		resp, err := adm.CreateTopic(ctx, partitions, rf, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		topicIDs[name] = resp.ID
	}
}

// metadataCode asks for one topic's metadata and returns its error code.
func metadataCode(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].ErrorCode
}

func mustACL(ctx context.Context, t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v %s", r, r.Err, r.ErrMessage)
		}
	}
}

// noError stands for error code 0 where a *kerr.Error is wanted.
var noError *kerr.Error

func codeOf(e *kerr.Error) int16 {
	if e == nil {
		return 0
	}
	return e.Code
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != codeOf(want) {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestAuthorizationSingleNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(withAuthorization))
	nodes := []*nodetest.Node{n}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := asPrincipal(t, rootUser, nodes)
	rootAdm := kadm.NewClient(root)
	createTopics(ctx, t, rootAdm, 1, 1, "orders", "sensor.temp", "other")
	if err := produceErr(ctx, root, "orders"); err != nil {
		t.Fatalf("a super user could not produce: %v", err)
	}

	alice := asPrincipal(t, "User:alice", nodes, kgo.DisableIdempotentWrite())
	aliceAdm := kadm.NewClient(alice)

	t.Run("no ACL: no produce, consume or describe", func(t *testing.T) {
		if err := produceErr(ctx, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("produce: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		wantCode(t, "fetch", fetchCode(ctx, t, alice, "orders"), kerr.TopicAuthorizationFailed)
		wantCode(t, "metadata", metadataCode(ctx, t, alice, "orders"), kerr.TopicAuthorizationFailed)
		// A topic that does not exist looks the same: existence is not leaked.
		wantCode(t, "metadata of a missing topic", metadataCode(ctx, t, alice, "nope"), kerr.TopicAuthorizationFailed)
		topics, err := aliceAdm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(topics) != 0 {
			t.Fatalf("listed topics alice may not describe: %v", topics.Names())
		}
		lo := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "orders"
		lt.Partitions = append(lt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
		lo.Topics = append(lo.Topics, lt)
		loResp, err := lo.RequestWith(ctx, alice.Broker(1))
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "list offsets", loResp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
		// kgo surfaces the refusal to a consumer as a fetch error.
		consumer := asPrincipal(t, "User:alice", nodes, kgo.ConsumeTopics("orders"))
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		var got error
		for got == nil && pctx.Err() == nil {
			consumer.PollFetches(pctx).EachError(func(_ string, _ int32, err error) { got = err })
		}
		if !errors.Is(got, kerr.TopicAuthorizationFailed) {
			t.Fatalf("consume: got %v, want TOPIC_AUTHORIZATION_FAILED", got)
		}
		// ACLs and cluster operations need cluster permissions.
		desc, err := aliceAdm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations())
		if err != nil || len(desc) != 1 || !errors.Is(desc[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("describe ACLs: got %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, desc)
		}
		res, err := aliceAdm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpAll))
		if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) || !strings.Contains(res[0].ErrMessage, "alter") {
			t.Fatalf("create ACLs without ALTER on the cluster: %v %+v", err, res)
		}
		// Credentials too: changing User:admin's password would be a takeover.
		altered, err := aliceAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "admin", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "mine"}})
		if !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(altered["admin"].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("alter SCRAM credentials: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, altered)
		}
		if _, err := aliceAdm.DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("describe SCRAM credentials: got %v, want CLUSTER_AUTHORIZATION_FAILED", err)
		}
		if _, err := aliceAdm.CreateTopic(ctx, 1, 1, nil, "alices"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("create topic: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if _, err := aliceAdm.DeleteTopic(ctx, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("delete topic: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	})

	t.Run("idempotent producer needs write somewhere", func(t *testing.T) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "InitProducerId", resp.ErrorCode, kerr.ClusterAuthorizationFailed)
	})

	t.Run("allowed after CreateACLs", func(t *testing.T) {
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpWrite, kadm.OpRead))
		idem := asPrincipal(t, "User:alice", nodes) // kgo's default: idempotent
		if err := produceErr(ctx, idem, "orders"); err != nil {
			t.Fatalf("produce after the ACL: %v", err)
		}
		wantCode(t, "fetch", fetchCode(ctx, t, alice, "orders"), noError)
		wantCode(t, "metadata (describe implied by read)", metadataCode(ctx, t, alice, "orders"), noError)
		// A fresh client: kgo's metadata cache remembers the refusals above.
		topics, err := kadm.NewClient(asPrincipal(t, "User:alice", nodes)).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := topics.Names(); len(got) != 1 || got[0] != "orders" {
			t.Fatalf("listed %v, want only orders", got)
		}
		wantCode(t, "fetch of another topic", fetchCode(ctx, t, alice, "other"), kerr.TopicAuthorizationFailed)
	})

	t.Run("deny beats allow", func(t *testing.T) {
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Deny("User:alice").Topics("orders").Operations(kadm.OpWrite))
		if err := produceErr(ctx, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("produce with allow and deny: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		wantCode(t, "fetch (read still allowed)", fetchCode(ctx, t, alice, "orders"), noError)
		// A wildcard principal's deny covers alice too.
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Deny("User:*").Topics("orders").Operations(kadm.OpRead))
		wantCode(t, "fetch after deny User:*", fetchCode(ctx, t, alice, "orders"), kerr.TopicAuthorizationFailed)
	})

	t.Run("prefixed", func(t *testing.T) {
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Allow("User:alice").Topics("sensor.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead))
		wantCode(t, "fetch sensor.temp", fetchCode(ctx, t, alice, "sensor.temp"), noError)
		wantCode(t, "fetch other", fetchCode(ctx, t, alice, "other"), kerr.TopicAuthorizationFailed)
	})

	t.Run("groups", func(t *testing.T) {
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Allow("User:alice").Topics("sensor.").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
		if err := produceErr(ctx, alice, "sensor.temp"); err != nil {
			t.Fatal(err)
		}
		consume := func() error {
			// Closed on return: a member left behind would keep
			// retrying, join once allowed and take the partition.
			cl, err := kgo.NewClient(append(principalOpts(t, "User:alice", nodes), kgo.ConsumeTopics("sensor.temp"),
				kgo.ConsumerGroup("dashboards"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				return err
			}
			defer cl.Close()
			pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
			defer pcancel()
			for {
				f := cl.PollFetches(pctx)
				if err := f.Err0(); err != nil {
					return err
				}
				if f.NumRecords() > 0 {
					return nil
				}
			}
		}
		if err := consume(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("group consume without a group ACL: got %v, want GROUP_AUTHORIZATION_FAILED", err)
		}
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Allow("User:alice").Groups("dashboards").Operations(kadm.OpRead))
		if err := consume(); err != nil {
			t.Fatalf("group consume with the group ACL: %v", err)
		}
		groups, err := aliceAdm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := groups.Groups(); len(got) != 1 || got[0] != "dashboards" {
			t.Fatalf("listed groups %v, want dashboards", got)
		}
		if _, err := aliceAdm.DeleteGroup(ctx, "dashboards"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("delete group: got %v, want GROUP_AUTHORIZATION_FAILED", err)
		}
	})

	t.Run("ACL APIs", func(t *testing.T) {
		all := kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations().ResourcePatternType(kadm.ACLPatternAny)
		res, err := rootAdm.DescribeACLs(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			n += len(r.Described)
		}
		if n != 7 {
			t.Fatalf("described %d ACLs, want 7: %+v", n, res)
		}
		del, err := rootAdm.DeleteACLs(ctx, kadm.NewACLs().Deny().DenyHosts().Topics("orders").Operations())
		if err != nil {
			t.Fatal(err)
		}
		deleted := 0
		for _, r := range del {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			deleted += len(r.Deleted)
		}
		if deleted != 2 {
			t.Fatalf("deleted %d ACLs, want the 2 denies: %+v", deleted, del)
		}
		wantCode(t, "fetch after the denies are gone", fetchCode(ctx, t, alice, "orders"), noError)
		if err := produceErr(ctx, alice, "orders"); err != nil {
			t.Fatalf("produce after the denies are gone: %v", err)
		}
		// Alice may describe ACLs once she may describe the cluster.
		mustACL(ctx, t, rootAdm, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpDescribe))
		res, err = aliceAdm.DescribeACLs(ctx, all)
		if err != nil || res[0].Err != nil {
			t.Fatalf("describe ACLs with DESCRIBE on the cluster: %v %+v", err, res)
		}
	})
}

// TestACLsClusterWide: ACLs created through one node of three apply on
// the others without a restart, and deleting them applies likewise.
func TestACLsClusterWide(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nodetest.WithConfig(withAuthorization))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := asPrincipal(t, rootUser, nodes)
	rootAdm := kadm.NewClient(root)
	createTopics(ctx, t, rootAdm, 3, 3, "shared")
	// Bob bootstraps from node 3 and produces to whichever node leads
	// each partition.
	bob := asPrincipal(t, "User:bob", []*nodetest.Node{nodes[2], nodes[0], nodes[1]})
	if err := produceErr(ctx, bob, "shared"); !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce before any ACL: got %v, want an authorization error", err)
	}
	// The ACL goes in through node 1's broker; node 3, asked alone,
	// applies it as soon as its replica of the meta shard has it.
	viaNode1 := kadm.NewClient(asPrincipal(t, rootUser, nodes[:1]))
	only := make([]*kgo.Client, len(nodes))
	for i, n := range nodes {
		only[i] = pinnedTo(t, "User:bob", n)
		wantCode(t, "metadata before the ACL", metadataCode(ctx, t, only[i], "shared"), kerr.TopicAuthorizationFailed)
	}
	mustACL(ctx, t, viaNode1, kadm.NewACLs().Allow("User:bob").Topics("shared").Operations(kadm.OpWrite))
	start := time.Now()
	waitCode(ctx, t, func() int16 { return metadataCode(ctx, t, only[2], "shared") }, noError, "node 3")
	t.Logf("node 3 allowed bob %v after CreateACLs returned on node 1", time.Since(start).Round(time.Millisecond))
	for i := range nodes {
		waitCode(ctx, t, func() int16 { return metadataCode(ctx, t, only[i], "shared") }, noError, "node", i+1)
	}
	if err := produceErr(ctx, bob, "shared"); err != nil {
		// kgo may still be backing off from the refused attempt.
		time.Sleep(time.Second)
		if err := produceErr(ctx, bob, "shared"); err != nil {
			t.Fatalf("produce after the ACL: %v", err)
		}
	}
	res, err := viaNode1.DeleteACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts().Topics("shared").Operations())
	if err != nil || len(res) != 1 || res[0].Err != nil || len(res[0].Deleted) != 1 {
		t.Fatalf("delete ACLs: %v %+v", err, res)
	}
	for i := range nodes {
		waitCode(ctx, t, func() int16 { return metadataCode(ctx, t, only[i], "shared") }, kerr.TopicAuthorizationFailed, "node", i+1)
	}
	if err := produceErr(ctx, bob, "shared"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce after the ACL was deleted: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// waitCode polls get until it returns want, for up to 10 s.
func waitCode(ctx context.Context, t *testing.T, get func() int16, want *kerr.Error, what ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get()
		if got == codeOf(want) {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%v: got %v, want %v", what, kerr.ErrorForCode(got), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuthorizationWithSASL: the same checks with principals from real
// SCRAM logins on the node's own Kafka listener.
func TestAuthorizationWithSASL(t *testing.T) {
	dir := t.TempDir()
	users := map[string]string{"ops": "ops-secret-1", "carol": "carol-secret-1"}
	var cfgUsers []nodecfg.UserConfig
	for name, pw := range users {
		f := filepath.Join(dir, name+".pw")
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfgUsers = append(cfgUsers, nodecfg.UserConfig{Name: name, PasswordFile: f})
	}
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Auth.Kafka = nodecfg.AuthSASL
		c.Auth.Users = cfgUsers
		c.Authorization = nodecfg.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:ops"}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	login := func(user string, opts ...kgo.Opt) *kgo.Client {
		mech := scram.Auth{User: user, Pass: users[user]}.AsSha512Mechanism()
		return n.KgoClient(t, append([]kgo.Opt{kgo.SASL(mech), kgo.RetryTimeout(3 * time.Second), kgo.RecordDeliveryTimeout(5 * time.Second)}, opts...)...)
	}
	ops := kadm.NewClient(login("ops"))
	if _, err := ops.CreateTopic(ctx, 1, 1, nil, "payments"); err != nil {
		t.Fatalf("a super user could not create a topic: %v", err)
	}
	carol := login("carol", kgo.DisableIdempotentWrite())
	if err := produceErr(ctx, carol, "payments"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without an ACL: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	mustACL(ctx, t, ops, kadm.NewACLs().Allow("User:carol").Topics("payments").Operations(kadm.OpWrite))
	if err := produceErr(ctx, carol, "payments"); err != nil {
		time.Sleep(time.Second) // kgo's backoff after the refusal
		if err := produceErr(ctx, carol, "payments"); err != nil {
			t.Fatalf("produce with the ACL: %v", err)
		}
	}
	// Carol may write but not manage ACLs, nor give herself more.
	res, err := kadm.NewClient(carol).CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").Clusters().Operations(kadm.OpAll))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("carol creating ACLs: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}
}
