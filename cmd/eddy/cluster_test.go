package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// clusterRounds is how many leader kills TestClusterProcesses measures:
// 1 in `make test`, 10 in `make cluster-test` (EDDY_CLUSTER_ROUNDS).
func clusterRounds() int {
	if n, err := strconv.Atoi(os.Getenv("EDDY_CLUSTER_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// exampleProc runs `eddy serve --config firmware-config/examples/three-node/nodeN.yaml`
// with its data in a test directory.
func exampleProc(t *testing.T, n int) *proc {
	t.Helper()
	cfg, err := filepath.Abs(fmt.Sprintf("../../firmware-config/examples/three-node/node%d.yaml", n))
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "eddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("node %d log (last 4 KiB):\n%s", n, tail(b, 4096))
			if dir := os.Getenv("EDDY_KEEP_LOGS"); dir != "" {
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-node%d.log", t.Name(), n)), b, 0o644)
			}
		}
	})
	data := t.TempDir()
	return &proc{
		kafka: fmt.Sprintf("127.0.0.1:%d9092", n), quic: fmt.Sprintf("127.0.0.1:%d9092", n), admin: fmt.Sprintf("127.0.0.1:%d9644", n),
		log:  logFile,
		data: data,
		args: []string{"serve", "--config", cfg, "--data", data, "--log-format", "json", "--log-level", "info"},
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

type adminNode struct {
	ID         uint64 `json:"id"`
	State      string `json:"state"`
	MetaLeader bool   `json:"meta_leader"`
}

func clusterNodes(t *testing.T, admin string) []adminNode {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/v1/cluster/nodes")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ns []adminNode
	json.NewDecoder(resp.Body).Decode(&ns)
	return ns
}

// TestClusterProcesses runs the three-node example as three `eddy serve`
// processes. While a producer writes with acks=all over QUIC, it SIGKILLs
// the leader of a partition, measures the time until a produce to that
// partition succeeds on the new leader, restarts the killed node and waits
// for it to catch up; then it SIGKILLs the meta shard's leader and checks
// topics can still be created. Every acknowledged record is read back.
func TestClusterProcesses(t *testing.T) {
	procs := []*proc{exampleProc(t, 1), exampleProc(t, 2), exampleProc(t, 3)}
	for _, p := range procs {
		p.launch(t)
	}
	for _, p := range procs {
		p.waitReady(t)
	}
	// One CA for the cluster (cluster_secret): any node's ca.crt will do.
	caFile := filepath.Join(procs[0].data, "tls", "ca.crt")
	pool, err := loadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	seeds := []string{procs[0].quic, procs[1].quic, procs[2].quic}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := sdk.Dial(ctx, sdk.WithBrokers(seeds...), sdk.WithCAPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adm := c.Admin()
	if resp, err := adm.CreateTopic(ctx, 3, 3, nil, "crash"); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}

	// Background load on every partition.
	var (
		mu    sync.Mutex
		acked = map[int32]map[int64]string{}
	)
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("v%d", i)
			c.Kgo().Produce(ctx, &kgo.Record{Topic: "crash", Key: []byte(strconv.Itoa(i % 11)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				mu.Lock()
				if acked[r.Partition] == nil {
					acked[r.Partition] = map[int64]string{}
				}
				acked[r.Partition][r.Offset] = v
				mu.Unlock()
			})
			if i%100 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()

	probe, err := c.NewKgo(kgo.DefaultProduceTopic("crash"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	var failovers []time.Duration
	for round := 0; round < clusterRounds(); round++ {
		leader := partitionLeader(t, adm, "crash", 0)
		victim := procs[leader-1]
		if err := probe.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("probe")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := victim.kill9(); err != nil {
			t.Fatal(err)
		}
		if err := probe.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after the kill")}).FirstErr(); err != nil {
			t.Fatalf("round %d: produce after killing the leader: %v", round, err)
		}
		failovers = append(failovers, time.Since(killed))
		t.Logf("round %d: killed node %d (leader of partition 0); a produce succeeded on the new leader after %v",
			round, leader, failovers[round].Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond) // produce into the gap the node will have to catch up
		victim.start(t)
		waitCaughtUp(t, victim.admin, procs, 60*time.Second)
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("failover over QUIC, kill -9 of the partition leader to the first produce acknowledged by the new leader: median %v (min %v, max %v, %d rounds)",
		failovers[len(failovers)/2].Round(time.Millisecond), failovers[0].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond), len(failovers))

	// Kill the controller that leads the meta shard; a topic can still be
	// created once another one leads.
	var metaLeader int
	for _, n := range clusterNodes(t, procs[0].admin) {
		if n.MetaLeader {
			metaLeader = int(n.ID)
		}
	}
	if metaLeader == 0 {
		t.Fatal("no meta leader reported")
	}
	killed := time.Now()
	if err := procs[metaLeader-1].kill9(); err != nil {
		t.Fatal(err)
	}
	for {
		attempt := time.Now()
		resp, err := adm.CreateTopic(ctx, 1, 2, nil, "after-controller-loss")
		if err == nil && resp.Err == nil {
			break
		}
		t.Logf("create topic after %v: attempt took %v: %v (%s)", time.Since(killed).Round(time.Millisecond), time.Since(attempt).Round(time.Millisecond), err, resp.ErrMessage)
		// While a controller is elected the client must be told to retry,
		// not that something unexpected broke.
		if err != nil && !kerr.IsRetriable(err) && !errors.Is(err, kerr.RequestTimedOut) && !isNetErr(err) {
			t.Fatalf("creating a topic while the controller is elected failed with an error a client does not retry: %v (%s)", err, resp.ErrMessage)
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("no topic could be created for a minute after killing controller %d: %v %v", metaLeader, err, resp.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("killed controller %d (meta leader); a topic was created %v later", metaLeader, time.Since(killed).Round(time.Millisecond))
	procs[metaLeader-1].start(t)

	close(stop)
	<-loadDone
	if err := c.Kgo().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	verifyProcAcked(t, c, "crash", acked)
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s has no certificate", file)
	}
	return pool, nil
}

func partitionLeader(t *testing.T, adm *kadm.Client, topic string, p int32) int32 {
	t.Helper()
	for range 100 {
		md, err := adm.Metadata(context.Background(), topic)
		if err == nil {
			if d, ok := md.Topics[topic].Partitions[p]; ok && d.Leader > 0 {
				return d.Leader
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/%d has no leader", topic, p)
	return 0
}

type replicaReport struct {
	Replicas []struct {
		Shard     uint64 `json:"shard"`
		Leader    bool   `json:"leader"`
		EndOffset int64  `json:"end_offset"`
	} `json:"replicas"`
}

// waitCaughtUp waits until every replica on the node at admin has reached
// the end its leader reported (or passed it, under load).
func waitCaughtUp(t *testing.T, admin string, procs []*proc, timeout time.Duration) {
	t.Helper()
	get := func(addr string) (replicaReport, bool) {
		resp, err := http.Get("http://" + addr + "/v1/internal/replicas")
		if err != nil {
			return replicaReport{}, false
		}
		defer resp.Body.Close()
		var r replicaReport
		return r, json.NewDecoder(resp.Body).Decode(&r) == nil
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leaderEnd := map[uint64]int64{}
		for _, p := range procs {
			if r, ok := get(p.admin); ok {
				for _, ri := range r.Replicas {
					if ri.Leader {
						leaderEnd[ri.Shard] = ri.EndOffset
					}
				}
			}
		}
		mine, ok := get(admin)
		caught := ok && len(mine.Replicas) > 0
		for _, ri := range mine.Replicas {
			if end, ok := leaderEnd[ri.Shard]; !ok || ri.EndOffset < end-int64(5000) {
				caught = false
			}
		}
		if caught {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the node at %s did not catch up within %v", admin, timeout)
}

// verifyProcAcked reads the topic back and checks every acknowledged
// record is at its offset; offsets are gapless per partition.
func verifyProcAcked(t *testing.T, c *sdk.Client, topic string, acked map[int32]map[int64]string) {
	t.Helper()
	ends := nodetest.EndOffsets(t, c.Admin(), topic)
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	next := map[int32]int64{}
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
		// The probe writes the same values again on purpose; the load's
		// values are unique, so seeing one twice is a duplicated write.
		if v := string(r.Value); v != "probe" && v != "after the kill" {
			if seen[v] {
				return fmt.Errorf("%q was written twice (again at %d/%d): an idempotent resend was not recognised", v, r.Partition, r.Offset)
			}
			seen[v] = true
		}
		if v, ok := acked[r.Partition][r.Offset]; ok && v != string(r.Value) {
			return fmt.Errorf("%d/%d holds %q, %q was acknowledged", r.Partition, r.Offset, r.Value, v)
		}
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(int(total)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for p, offs := range acked {
		for off := range offs {
			n++
			if off >= next[p] {
				t.Fatalf("acknowledged %d/%d is missing", p, off)
			}
		}
	}
	t.Logf("all %d acknowledged records read back (%d records in the topic)", n, total)
}

// isNetErr reports whether err is the client's own connection failure (the
// broker it asked died), which clients retry on another broker.
func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF)
}
