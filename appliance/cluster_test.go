package appliance_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// clusterPool trusts every node's CA.
func clusterPool(t *testing.T, nodes []*nodetest.Node) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, n := range nodes {
		pem, err := os.ReadFile(n.CAFile())
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("CA of node %d: %v", n.Config.NodeID, err)
		}
	}
	return pool
}

// clusterClient dials the nodes over QUIC, all of them as seeds.
func clusterClient(t *testing.T, nodes []*nodetest.Node, extra ...kgo.Opt) *sdk.Client {
	t.Helper()
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.Addrs().QUIC)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, sdk.WithBrokers(seeds...), sdk.WithCAPool(clusterPool(t, nodes)), sdk.WithKgoOptions(extra...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// ackLog records what a producer was told, per partition and offset.
type ackLog struct {
	mu       sync.Mutex
	acked    map[int32]map[int64]string
	count    atomic.Int64
	errs     atomic.Int64
	firstErr error
}

func newAckLog() *ackLog { return &ackLog{acked: map[int32]map[int64]string{}} }

// inPartition counts acknowledged records of partition p.
func (a *ackLog) inPartition(p int32) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked[p])
}

func (a *ackLog) record(r *kgo.Record, err error) {
	if err != nil {
		a.errs.Add(1)
		a.mu.Lock()
		if a.firstErr == nil {
			a.firstErr = err
		}
		a.mu.Unlock()
		return
	}
	a.mu.Lock()
	if a.acked[r.Partition] == nil {
		a.acked[r.Partition] = map[int64]string{}
	}
	a.acked[r.Partition][r.Offset] = string(r.Value)
	a.mu.Unlock()
	a.count.Add(1)
}

// produceUntil produces distinct values until stop is closed.
func produceUntil(ctx context.Context, cl *kgo.Client, topic string, log *ackLog, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprintf("v%d", i))}, log.record)
		if i%64 == 0 {
			time.Sleep(time.Millisecond) // keep the in-flight window small
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verifyAcked reads every partition of topic through c from the start and
// checks each acknowledged record is at its acknowledged offset, each
// offset is read once, in order, with no gap. It returns how many values
// were read more than once: retries of writes whose acknowledgement was
// lost, which only idempotent producers prevent.
func verifyAcked(t *testing.T, c *sdk.Client, topic string, log *ackLog, total int, opts ...sdk.ConsumeOption) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := map[int32]int64{}
	seen := map[string]int{}
	dups := 0
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
		if v, ok := log.acked[r.Partition][r.Offset]; ok && v != string(r.Value) {
			return fmt.Errorf("%d/%d holds %q, %q was acknowledged there", r.Partition, r.Offset, r.Value, v)
		}
		seen[string(r.Value)]++
		if seen[string(r.Value)] == 2 {
			dups++
		}
		return nil
	}, append([]sdk.ConsumeOption{sdk.FromBeginning(), sdk.MaxRecords(total)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for p, offs := range log.acked {
		for off := range offs {
			if off >= next[p] {
				t.Fatalf("acknowledged %d/%d was not read (partition read to %d)", p, off, next[p])
			}
		}
	}
	return dups
}

// endOffsets sums the topic's end offsets, retrying through leader
// elections as clients do.
func endOffsets(t *testing.T, c *sdk.Client, topic string) (total int64) {
	t.Helper()
	var err error
	for range 50 {
		var ends kadm.ListedOffsets
		if ends, err = c.Admin().ListEndOffsets(context.Background(), topic); err == nil {
			err = ends.Error()
		}
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
			return total
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
	return 0
}

// TestClusterFailover: with a 3-node cluster and a 6-partition topic with
// replication factor 3, stop the leader of a partition while kgo produces
// over QUIC with acks=all; production continues on the new leader and
// every acknowledged record is read back, from leaders and from followers.
func TestClusterFailover(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Rack = fmt.Sprintf("rack-%d", c.NodeID)
	}))
	c := clusterClient(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := c.Admin().CreateTopic(ctx, 6, 3, nil, "failover")
	if err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	log := newAckLog()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); produceUntil(ctx, c.Kgo(), "failover", log, stop) }()
	waitFor(t, "2000 acknowledged records", 60*time.Second, func() bool { return log.count.Load() >= 2000 })

	shard := nodes[0].Host().Meta().Topics["failover"].Partitions[0].ShardID
	leader, _, ok := nodes[0].Host().Leader(shard)
	if !ok {
		t.Fatal("partition 0 has no leader")
	}
	victim := nodes[leader-1]
	var survivors []*nodetest.Node
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	t.Logf("stopping node %d, the leader of partition 0, after %d acknowledged records", leader, log.count.Load())
	victim.Stop()
	waitFor(t, "a new leader of partition 0", 30*time.Second, func() bool {
		l, _, ok := survivors[0].Host().Leader(shard)
		return ok && l != leader
	})
	// Records acknowledged from here on came from the new leader.
	beforeP0 := log.inPartition(0)
	waitFor(t, "200 more acknowledged records in partition 0 on its new leader", 60*time.Second, func() bool {
		return log.inPartition(0) >= beforeP0+200
	})
	close(stop)
	<-done
	if err := c.Kgo().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records acknowledged, %d failed (first error: %v)", log.count.Load(), log.errs.Load(), log.firstErr)

	reader := clusterClient(t, survivors)
	total := int(endOffsets(t, reader, "failover"))
	// kgo's producer is idempotent: resends after the leader stopped must
	// have been recognised, not written twice.
	if dups := verifyAcked(t, reader, "failover", log, total); dups != 0 {
		t.Fatalf("%d values were written twice", dups)
	}
	t.Logf("read %d records from the leaders, each once", total)

	// Read everything again from one survivor's replicas: a consumer in
	// its rack is sent there by the leaders (KIP-392), and a follower
	// serves from its applied log.
	// The consumer sits in the rack of the survivor leading fewer
	// partitions, so some of its reads must be follower reads.
	leads := func(n *nodetest.Node) int {
		c := 0
		for _, r := range n.Host().Replicas() {
			if r.Leader {
				c++
			}
		}
		return c
	}
	near, far := survivors[1], survivors[0]
	if leads(near) > leads(far) {
		near, far = far, near
	}
	before, farBefore := testutil.ToFloat64(near.Metrics().FetchBytes), testutil.ToFloat64(far.Metrics().FetchBytes)
	verifyAcked(t, reader, "failover", log, total,
		sdk.WithConsumerKgoOptions(kgo.Rack(near.Config.Rack)))
	served := testutil.ToFloat64(near.Metrics().FetchBytes) - before
	if farServed := testutil.ToFloat64(far.Metrics().FetchBytes) - farBefore; farServed != 0 {
		t.Fatalf("node %d served %.0f record bytes to a consumer in node %d's rack; it should only have redirected it", far.Config.NodeID, farServed, near.Config.NodeID)
	}
	led := 0
	for _, r := range near.Host().Replicas() {
		if r.Leader {
			led++
		}
	}
	if led == 6 || served == 0 {
		t.Fatalf("node %d (rack %s) leads %d of 6 partitions and served %.0f bytes to a consumer in its rack", near.Config.NodeID, near.Config.Rack, led, served)
	}
	t.Logf("node %d served %.0f bytes to the consumer in its rack, leading %d of 6 partitions", near.Config.NodeID, served, led)
}

// TestJoinGrowsControllers: a node alone is the only controller; nodes
// that join get the metadata at once and are promoted until three vote.
// The admin token guards the join.
func TestJoinGrowsControllers(t *testing.T) {
	token := nodetest.WithConfig(func(c *nodecfg.Config) { c.AdminToken = "s3cret" })
	first := nodetest.Start(t, token)
	second := nodetest.Join(t, first, 2)
	third := nodetest.Join(t, first, 3)
	nodes := []*nodetest.Node{first, second, third}
	admin := &sdk.ClusterAdmin{URL: "http://" + first.Addrs().Admin, Token: "s3cret"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor(t, "three controllers", 30*time.Second, func() bool {
		ns, err := admin.Nodes(ctx)
		if err != nil || len(ns) != 3 {
			return false
		}
		for _, n := range ns {
			if !n.Controller || n.State != "alive" {
				return false
			}
		}
		return true
	})
	// The joined nodes serve clients: a replicated topic spans all three.
	c := clusterClient(t, nodes)
	if resp, err := c.Admin().CreateTopic(ctx, 3, 3, nil, "grown"); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	if err := c.Produce(ctx, &kgo.Record{Topic: "grown", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// With three controllers, losing the first node keeps the cluster
	// working: a topic can still be created.
	first.Stop()
	c2 := clusterClient(t, []*nodetest.Node{second, third})
	waitFor(t, "a topic created without node 1", 30*time.Second, func() bool {
		resp, err := c2.Admin().CreateTopic(ctx, 1, 2, nil, "after")
		return err == nil && resp.Err == nil
	})
	// A wrong token is refused with a message that says so.
	bad := &sdk.ClusterAdmin{URL: "http://" + second.Addrs().Admin, Token: "wrong"}
	if _, err := bad.Nodes(ctx); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestAddNodeAndRebalance: a fourth node joins a running 3-node cluster
// and a rebalance moves replicas onto it through Raft membership changes
// while a producer and a consumer keep running. Nothing is lost, the
// consumer sees every acknowledged record, and every replica of every
// partition holds byte-identical data afterwards.
func TestAddNodeAndRebalance(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3)
	c := clusterClient(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if resp, err := c.Admin().CreateTopic(ctx, 6, 3, nil, "moving"); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	log := newAckLog()
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() { defer close(produced); produceUntil(ctx, c.Kgo(), "moving", log, stop) }()

	// A consumer follows the topic live through the whole move.
	seen := map[string]bool{}
	var seenMu sync.Mutex
	consumerDone := make(chan error, 1)
	cctx, stopConsumer := context.WithCancel(ctx)
	go func() {
		consumerDone <- c.Consume(cctx, "moving", func(r *kgo.Record) error {
			seenMu.Lock()
			seen[string(r.Value)] = true
			seenMu.Unlock()
			return nil
		}, sdk.FromBeginning())
	}()
	waitFor(t, "1000 acknowledged records", 30*time.Second, func() bool { return log.count.Load() >= 1000 })

	fourth := nodetest.Join(t, nodes[0], 4)
	all := append(nodes, fourth)
	admin := &sdk.ClusterAdmin{URL: "http://" + nodes[0].Addrs().Admin}
	waitFor(t, "node 4 to be alive in the cluster view", 20*time.Second, func() bool {
		ns, err := admin.Nodes(ctx)
		return err == nil && len(ns) == 4 && ns[3].State == "alive"
	})
	// A node's view can flag the newcomer down for a moment (a failed Raft
	// connection counts at once, until its next poll); the plan then leaves
	// it out, and an operator runs rebalance again.
	var moves []sdk.Move
	for range 20 {
		var err error
		if moves, err = admin.Rebalance(ctx); err != nil {
			// 503: the metadata read timed out (a busy machine); the
			// admin API asks the operator to try again.
			if ae := (*sdk.AdminError)(nil); errors.As(err, &ae) && ae.Temporary() {
				time.Sleep(time.Second)
				continue
			}
			t.Fatal(err)
		}
		if len(moves) >= 3 {
			break
		}
		time.Sleep(time.Second)
	}
	if len(moves) < 3 {
		t.Fatalf("rebalance onto an empty fourth node planned only %d moves", len(moves))
	}
	t.Logf("rebalance started %d moves", len(moves))
	if err := admin.WaitReassignments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	onFourth := 0
	for _, p := range nodes[0].Host().Meta().Topics["moving"].Partitions {
		if slices.Contains(p.Replica, 4) {
			onFourth++
		}
	}
	if onFourth < 4 {
		t.Fatalf("node 4 holds %d of 18 replicas after the rebalance", onFourth)
	}
	// Keep producing a little after the moves, then stop.
	target := log.count.Load() + 1000
	waitFor(t, "1000 more acknowledged records after the moves", 30*time.Second, func() bool { return log.count.Load() >= target })
	close(stop)
	<-produced
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	if err := c.Kgo().Flush(fctx); err != nil {
		for _, n := range all {
			cl, _ := kgo.NewClient(kgo.SeedBrokers(n.Addrs().Kafka))
			md, err := kadm.NewClient(cl).Metadata(ctx, "moving")
			if err == nil {
				for _, p := range md.Topics["moving"].Partitions.Sorted() {
					t.Logf("metadata from node %d: partition %d leader %d epoch %d replicas %v isr %v err %v", n.Config.NodeID, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.Err)
				}
			}
			cl.Close()
		}
		t.Fatal(err)
	}
	t.Logf("%d acknowledged, %d failed (%v)", log.count.Load(), log.errs.Load(), log.firstErr)

	// The live consumer saw every acknowledged record.
	waitFor(t, "the consumer to see every acknowledged record", 30*time.Second, func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		for _, offs := range log.acked {
			for _, v := range offs {
				if !seen[v] {
					return false
				}
			}
		}
		return true
	})
	stopConsumer()
	<-consumerDone

	total := int(endOffsets(t, c, "moving"))
	if dups := verifyAcked(t, c, "moving", log, total); dups != 0 {
		t.Fatalf("%d values were written twice", dups)
	}
	// Every replica of every partition is byte-identical.
	waitFor(t, "replicas to converge", 30*time.Second, func() bool { return replicasIdentical(t, all, "moving", false) })
	replicasIdentical(t, all, "moving", true)
}

// replicasIdentical compares each partition's log bytes across the nodes
// that host it; with report it fails the test on a difference.
func replicasIdentical(t *testing.T, nodes []*nodetest.Node, topic string, report bool) bool {
	t.Helper()
	st := nodes[0].Host().Meta()
	for _, p := range st.Topics[topic].Partitions {
		var ref []byte
		var refNode uint64
		for _, id := range p.Replica {
			var n *nodetest.Node
			for _, cand := range nodes {
				if cand.Config.NodeID == id {
					n = cand
				}
			}
			part, err := n.Host().Partition(p.ShardID)
			if err != nil {
				if report {
					t.Fatalf("node %d has no replica of partition %d: %v", id, p.Index, err)
				}
				return false
			}
			l, err := part.Log()
			if err != nil {
				return false
			}
			b, err := l.Read(l.StartOffset(), 1<<30, nil)
			if err != nil {
				return false
			}
			if ref == nil {
				ref, refNode = b, id
				continue
			}
			if !bytes.Equal(ref, b) {
				if report {
					t.Fatalf("partition %d: node %d holds %d bytes, node %d %d bytes, and they differ", p.Index, refNode, len(ref), id, len(b))
				}
				return false
			}
		}
	}
	return true
}

// TestCatchUpFromSnapshot: a replica that was down while the Raft log was
// compacted past what it has catches up from a snapshot that streams
// the partition's segment files, and ends up byte-identical.
func TestCatchUpFromSnapshot(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3, nodetest.WithConfig(func(c *nodecfg.Config) { c.Raft.SnapshotEntries = 5 }))
	c := clusterClient(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if resp, err := c.Admin().CreateTopic(ctx, 1, 3, nil, "snap"); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	shard := nodes[0].Host().Meta().Topics["snap"].Partitions[0].ShardID
	leader, _, _ := nodes[0].Host().Leader(shard)
	var lagger *nodetest.Node
	for _, n := range nodes {
		if n.Config.NodeID != leader {
			lagger = n
		}
	}
	lagger.Stop()
	// One record per request: many Raft entries, so the leader snapshots and
	// compacts its log well past where the stopped replica is.
	cl, err := c.NewKgo(kgo.DefaultProduceTopic("snap"), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("r%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	lagger.Start()
	var all []*nodetest.Node
	all = append(all, nodes...)
	waitFor(t, "the restarted replica to be byte-identical", 60*time.Second, func() bool {
		return replicasIdentical(t, all, "snap", false)
	})
	if got := lagger.Host().SnapshotsReceived(); got == 0 {
		t.Fatal("the replica caught up without a snapshot; the test did not exercise snapshot streaming")
	}
	t.Logf("node %d caught up through %d snapshot(s)", lagger.Config.NodeID, lagger.Host().SnapshotsReceived())
}
