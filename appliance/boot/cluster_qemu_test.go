//go:build linux

package boot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/image"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/appliance/peers"
	"github.com/eddybroker/eddy/sdk"
	"github.com/eddybroker/eddy/transport"
)

// The qemu-cluster examples: box N is forwarded host 127.0.0.1:2919N (TCP
// and UDP) to its 9092, 2964N to its admin 9644 and 2710N to its Raft
// 7100. Inside a guest 10.0.2.2 is the host's loopback, so the boxes
// reach each other's Raft and admin API through the host's forwards.
// (29092 is not used: the three-node example's node 2 listens there.)
const (
	clusterExamples = "../../firmware-config/examples/qemu-cluster"
	clusterTopic    = "three-box"
	// clusterVMTimeout bounds each qemu run of the cluster test: the first
	// boots live through the whole test.
	clusterVMTimeout = 12 * time.Minute
)

func clusterKafkaPort(n int) int { return 29190 + n }
func clusterAdminPort(n int) int { return 29640 + n }
func clusterRaftPort(n int) int  { return 27100 + n }

// clusterBox is one guest of the cluster test.
type clusterBox struct {
	n         int
	img, vars string
	vm        *vm
}

func (b *clusterBox) admin() string { return fmt.Sprintf("127.0.0.1:%d", clusterAdminPort(b.n)) }
func (b *clusterBox) kafka() string { return fmt.Sprintf("127.0.0.1:%d", clusterKafkaPort(b.n)) }

func (b *clusterBox) boot(t *testing.T, dir, name string) {
	t.Helper()
	k, a, r := clusterKafkaPort(b.n), clusterAdminPort(b.n), clusterRaftPort(b.n)
	b.vm = startVMWith(t, vmConfig{Dir: dir, Image: b.img, Vars: b.vars, Name: name, AdminPort: a, Timeout: clusterVMTimeout,
		HostFwd: []string{
			fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:9092", k),
			fmt.Sprintf("hostfwd=udp:127.0.0.1:%d-:9092", k),
			fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:9644", a),
			fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:7100", r),
		}})
}

// TestImageCluster is the three-box test: one image built from
// firmware-config/examples/qemu-cluster/box1.yaml, copied twice with
// box2's and box3's configs written in (the fleet workflow of eddy image
// config), boots as three qemu guests that form one cluster over their
// user networks. A topic with three replicas per partition takes an
// idempotent acks=all producer's records all along. Twice a guest goes
// away and comes back: the leader of partition 0 by its power button,
// then a partition leader (the meta shard's, when it leads one) by a
// power cut (qemu killed). Each time the other two keep acknowledging,
// and the guest boots again, rejoins and catches up. At the end every
// replica ends at the same offset and every acknowledged record is read
// back exactly once and in order, over TCP and over QUIC (verified
// against the cluster CA).
// It runs under `make image-test` (EDDY_IMAGE_TEST=1); two and a half
// minutes on two quiet cores (three TCG guests), four when loaded.
func TestImageCluster(t *testing.T) {
	var tcp, udp []int
	for n := 1; n <= 3; n++ {
		tcp = append(tcp, clusterKafkaPort(n), clusterAdminPort(n), clusterRaftPort(n))
		udp = append(udp, clusterKafkaPort(n))
	}
	dir := imageTestSetup(t, "the qemu-cluster examples use it", nil, tcp, udp)
	testStart := time.Now()

	// One image from box1.yaml; box2 and box3 are copies with their own
	// device config written in.
	eddyBin := filepath.Join(dir, "eddy")
	buildStatic(t, "../../cmd/eddy", eddyBin)
	var cfgs [4]device.Config
	var ymls [4][]byte
	for n := 1; n <= 3; n++ {
		yml, err := os.ReadFile(filepath.Join(clusterExamples, fmt.Sprintf("box%d.yaml", n)))
		if err != nil {
			t.Fatal(err)
		}
		if cfgs[n], err = device.Parse(yml); err != nil {
			t.Fatal(err)
		}
		ymls[n] = yml
	}
	kernel, modules, err := image.KernelFor()
	if err != nil {
		t.Fatal(err)
	}
	boxes := []*clusterBox{{n: 1}, {n: 2}, {n: 3}}
	for _, b := range boxes {
		b.img = filepath.Join(dir, fmt.Sprintf("box%d.img", b.n))
		b.vars = filepath.Join(dir, fmt.Sprintf("box%d-vars.fd", b.n))
		copyFile(t, ovmfVars, b.vars)
	}
	start := time.Now()
	if _, err := image.Build(context.Background(), image.Options{Config: cfgs[1], ConfigYAML: ymls[1], Init: eddyBin, Kernel: kernel, Modules: modules, Version: "imagetest", Output: boxes[0].img}); err != nil {
		t.Fatal(err)
	}
	imgBuild := time.Since(start)
	start = time.Now()
	for _, b := range boxes[1:] {
		// The image is sparse (a few dozen MiB of 770): keep the copies so.
		if out, err := exec.Command("cp", "--sparse=always", boxes[0].img, b.img).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		if err := image.WriteConfig(context.Background(), b.img, cfgs[b.n], ymls[b.n]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("FIGURE image build (box1) %s; two copies with box2's and box3's configs written in %s",
		imgBuild.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Boot all three at once and wait until each serves: a founder's
	// broker serves once the meta shard has a quorum, so the first to
	// come up waits for a second.
	for _, b := range boxes {
		b.boot(t, dir, fmt.Sprintf("box%d", b.n))
	}
	for _, b := range boxes {
		ready := b.vm.waitReady(t)
		t.Logf("FIGURE three guests booting at once: box%d qemu start to broker serving %s (TCG)", b.n, ready.Round(100*time.Millisecond))
	}
	start = time.Now()
	// Every node's view of the others comes from polling their admin APIs
	// (appliance/peers): wait until each box sees all three alive.
	allAlive := map[uint64]string{1: "alive", 2: "alive", 3: "alive"}
	for _, b := range boxes {
		clusterWaitNodes(t, b, allAlive, 90*time.Second)
	}
	t.Logf("all three ready; every box's admin API lists three alive nodes %s later", time.Since(start).Round(100*time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	seeds := []string{boxes[0].kafka(), boxes[1].kafka(), boxes[2].kafka()}
	c, err := sdk.Dial(ctx, sdk.WithTransport(sdk.TCP), sdk.WithBrokers(seeds...), sdk.WithClientID("three-box"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adm := c.Admin()
	// The controller refuses three replicas while its view counts fewer
	// than three live nodes; on slow guests a poll can miss its deadline
	// and a live node count as down for a moment, so retry that.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		resp, err := adm.CreateTopic(ctx, 3, 3, nil, clusterTopic)
		if err == nil && (resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists)) {
			break
		}
		if time.Now().After(deadline) || (err == nil && !errors.Is(resp.Err, kerr.InvalidReplicationFactor)) {
			t.Fatalf("create topic: %v %v %s", err, resp.Err, resp.ErrMessage)
		}
		t.Logf("create topic: %v %v %s; retrying", err, resp.Err, resp.ErrMessage)
	}
	md := clusterWaitISR(t, adm, clusterTopic, 60*time.Second)
	for p, d := range md.Topics[clusterTopic].Partitions {
		t.Logf("partition %d: leader %d, replicas %v, isr %v", p, d.Leader, d.Replicas, d.ISR)
	}

	// Background load: an idempotent acks=all producer (kgo's default),
	// one record every 50 ms spread over the partitions.
	prod := newClusterAcks()
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			prod.produce(ctx, c.Kgo(), &kgo.Record{Topic: clusterTopic, Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("v%06d", i))})
		}
	}()
	defer func() {
		select {
		case <-stopLoad:
		default:
			close(stopLoad)
		}
		<-loadDone
	}()
	prod.waitEach(t, 3, 20, 2*time.Minute)

	probe, err := c.NewKgo(kgo.DefaultProduceTopic(clusterTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()

	// Two rounds, each taking one guest away while producing and booting
	// it again: the leader of partition 0 by its power button (the broker
	// hands its leaderships over and powers off), then by pulling the plug
	// the meta shard's leader if it leads a partition, else partition 0's
	// leader (qemu killed: no hand-off, what the guest had not written to
	// its disk is lost, Raft elects new leaders).
	for _, cut := range []bool{false, true} {
		victim := boxes[clusterLeader(t, adm, clusterTopic, 0)-1]
		metaLeader := 0
		for _, n := range clusterNodes(t, boxes[0]) {
			if n.MetaLeader {
				metaLeader = int(n.ID)
			}
		}
		// The partitions each node leads; the probe writes to the first
		// of the victim's.
		led := map[int][]int32{}
		for p, d := range clusterMetadata(t, adm, clusterTopic).Topics[clusterTopic].Partitions {
			led[int(d.Leader)] = append(led[int(d.Leader)], p)
		}
		if cut && len(led[metaLeader]) > 0 {
			// The plug is pulled on the meta leader when it leads a
			// partition too: the controller fails over as well.
			victim = boxes[metaLeader-1]
		}
		slices.Sort(led[victim.n])
		probeTo := int32(0) // when leadership moved between the two looks
		if len(led[victim.n]) > 0 {
			probeTo = led[victim.n][0]
		}
		how := "power button"
		if cut {
			how = "power cut"
		}
		if err := prod.produceSync(ctx, probe, &kgo.Record{Partition: probeTo, Value: []byte(how + " probe before")}); err != nil {
			t.Fatal(err)
		}
		before := prod.counts()
		off := time.Now()
		if cut {
			if err := victim.vm.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		} else {
			victim.vm.qmpRun(t, "system_powerdown")
		}
		// A produce sent as the guest goes away, to a partition it led.
		probeErr := make(chan error, 1)
		var probeTook time.Duration
		go func() {
			err := prod.produceSync(ctx, probe, &kgo.Record{Partition: probeTo, Value: []byte(how + " probe during")})
			probeTook = time.Since(off)
			probeErr <- err
		}()
		if cut {
			select {
			case <-victim.vm.done:
			case <-time.After(30 * time.Second):
				t.Fatal("qemu not gone 30 s after SIGKILL")
			}
		} else {
			victim.vm.waitExit(t, 90*time.Second)
			if log := victim.vm.serial(t); !strings.Contains(log, "powering off") {
				t.Fatalf("box%d did not power off cleanly:\n%s", victim.n, tail(log, 3000))
			}
		}
		exited := time.Since(off)
		if err := <-probeErr; err != nil {
			t.Fatalf("%s: produce to partition %d as its leader went away: %v", how, probeTo, err)
		}
		// Produce continues on the other two: every partition, led by one
		// of them now, takes new records.
		after := prod.counts()
		prod.waitMore(t, after, 20, 2*time.Minute)
		now := time.Now()
		var gaps []string
		for p := range int32(3) {
			gaps = append(gaps, fmt.Sprintf("%d: %s", p, prod.maxGap([]int32{p}, off, now).Round(10*time.Millisecond)))
		}
		t.Logf("FIGURE %s on box%d (leading partitions %v, meta leader %v): qemu gone after %s; a produce to partition %d sent then was acknowledged after %s; the longest each partition went without an acknowledgement from then on %s; acknowledged before/at exit/now %d/%d/%d",
			how, victim.n, led[victim.n], victim.n == metaLeader, exited.Round(100*time.Millisecond), probeTo, probeTook.Round(10*time.Millisecond),
			strings.Join(gaps, ", "), ackSum(before), ackSum(after), ackSum(prod.counts()))
		survivor := boxes[victim.n%3] // the next box
		down := maps.Clone(allAlive)
		down[uint64(victim.n)] = "down"
		clusterWaitNodes(t, survivor, down, 30*time.Second)
		// Metadata answers without it: no partition led by it, none with
		// it in sync (a broker drops it a few seconds after its last
		// answer).
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			var bad string
			for p, d := range clusterMetadata(t, adm, clusterTopic).Topics[clusterTopic].Partitions {
				if int(d.Leader) == victim.n || slices.Contains(d.ISR, int32(victim.n)) || len(d.ISR) != 2 {
					bad += fmt.Sprintf(" partition %d: leader %d, isr %v;", p, d.Leader, d.ISR)
				}
			}
			if bad == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("with box%d off, after 30 s:%s", victim.n, bad)
			}
		}

		// Boot it again (same disk, same firmware variables), producing
		// all along; it rejoins and catches up.
		start = time.Now()
		victim.boot(t, dir, fmt.Sprintf("box%d-after-%s", victim.n, strings.ReplaceAll(how, " ", "-")))
		ready := victim.vm.waitReady(t)
		clusterWaitNodes(t, survivor, allAlive, 60*time.Second)
		clusterWaitCaughtUp(t, victim, boxes, false, 2*time.Minute)
		rejoin := time.Since(start)
		recovered := ""
		if cut && strings.Contains(victim.vm.serial(t), "recovery complete") {
			recovered = "; ext4 replayed its journal"
		}
		t.Logf("FIGURE box%d booted again after the %s: qemu start to broker serving %s, to alive and its replicas caught up with the leaders' %s (acknowledged so far %d)%s",
			victim.n, how, ready.Round(100*time.Millisecond), rejoin.Round(100*time.Millisecond), ackSum(prod.counts()), recovered)
		clusterWaitISR(t, adm, clusterTopic, 60*time.Second)
	}

	// Stop producing; every replica of every partition ends at the same
	// offset.
	close(stopLoad)
	<-loadDone
	if err := c.Kgo().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := prod.errors(); len(errs) > 0 {
		t.Fatalf("%d produces failed, e.g. %v", len(errs), errs[0])
	}
	clusterWaitCaughtUp(t, boxes[0], boxes, true, time.Minute)
	// Every node alive with three replicas. (Three TCG guests on two
	// cores fall behind at times: a peer's admin API may miss its
	// 1 s poll deadline and count as down for a moment, so wait.)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		var bad string
		for _, n := range clusterNodes(t, boxes[0]) {
			if n.State != "alive" || n.Replicas != 3 {
				bad += fmt.Sprintf(" node %d %s with %d replicas;", n.ID, n.State, n.Replicas)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want every node alive with 3 replicas:%s", bad)
		}
	}

	// Read everything back over TCP and over QUIC, from all three. QUIC
	// verifies the guests' certificates against the cluster CA, derived
	// here from the cluster secret as every box derives it.
	caDir := filepath.Join(dir, "cluster-ca")
	if _, err := transport.EnsureClusterTLS(caDir, []byte(cfgs[1].Node.ClusterSecret), nil); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []sdk.Transport{sdk.TCP, sdk.QUIC} {
		start := time.Now()
		opts := []sdk.Option{sdk.WithTransport(tr), sdk.WithBrokers(seeds...)}
		if tr == sdk.QUIC { // the Kafka TCP listener is plaintext (insecure: true)
			opts = append(opts, sdk.WithCAFile(filepath.Join(caDir, transport.CACertFile)))
		}
		cc, err := sdk.Dial(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		n, total := prod.verify(t, cc, clusterTopic)
		cc.Close()
		t.Logf("over %s: all %d acknowledged records read back once and in order (%d in the topic) in %s", tr, n, total, time.Since(start).Round(time.Millisecond))
	}

	// Power the whole cluster off: every box stops cleanly.
	start = time.Now()
	for _, b := range boxes {
		b.vm.qmpRun(t, "system_powerdown")
	}
	for _, b := range boxes {
		b.vm.waitExit(t, 90*time.Second)
		if log := b.vm.serial(t); !strings.Contains(log, "powering off") {
			t.Fatalf("box%d did not power off cleanly:\n%s", b.n, tail(log, 3000))
		}
	}
	t.Logf("FIGURE power button on all three to every qemu exited %s; whole test %s",
		time.Since(start).Round(100*time.Millisecond), time.Since(testStart).Round(time.Second))
}

// clusterAcks records what the producer had acknowledged, where, and when.
type clusterAcks struct {
	mu    sync.Mutex
	acked map[int32]map[int64]string
	times map[int32][]time.Time // when each partition's acknowledgements came
	errs  []error
}

func newClusterAcks() *clusterAcks {
	return &clusterAcks{acked: map[int32]map[int64]string{}, times: map[int32][]time.Time{}}
}

func (a *clusterAcks) record(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("%s: %w", r.Value, err))
		return
	}
	if a.acked[r.Partition] == nil {
		a.acked[r.Partition] = map[int64]string{}
	}
	a.acked[r.Partition][r.Offset] = string(r.Value)
	a.times[r.Partition] = append(a.times[r.Partition], time.Now())
}

func (a *clusterAcks) produce(ctx context.Context, cl *kgo.Client, r *kgo.Record) {
	cl.Produce(ctx, r, a.record)
}

func (a *clusterAcks) produceSync(ctx context.Context, cl *kgo.Client, r *kgo.Record) error {
	res := cl.ProduceSync(ctx, r)
	rec, err := res.First()
	if rec == nil {
		rec = r
	}
	a.record(rec, err)
	return err
}

func (a *clusterAcks) counts() map[int32]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int32]int{}
	for p, offs := range a.acked {
		out[p] = len(offs)
	}
	return out
}

func (a *clusterAcks) errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

// maxGap is the longest time one of partitions went without an
// acknowledgement between from and to.
func (a *clusterAcks) maxGap(partitions []int32, from, to time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gap time.Duration
	for _, p := range partitions {
		last := from
		for _, at := range a.times[p] {
			if at.Before(from) || at.After(to) {
				continue
			}
			gap = max(gap, at.Sub(last))
			last = at
		}
		gap = max(gap, to.Sub(last))
	}
	return gap
}

// waitEach waits until each of partitions has at least n acknowledged
// records.
func (a *clusterAcks) waitEach(t *testing.T, partitions int32, n int, d time.Duration) {
	t.Helper()
	want := map[int32]int{}
	for p := range partitions {
		want[p] = 0
	}
	a.waitMore(t, want, n, d)
}

// waitMore waits until every partition in base has n more acknowledged
// records than base says.
func (a *clusterAcks) waitMore(t *testing.T, base map[int32]int, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		now := a.counts()
		done := true
		for p, c := range base {
			if now[p] < c+n {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("produce stalled: acknowledged per partition %v, want %d more than %v within %s (errors: %v)", now, n, base, d, a.errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verify reads topic from the beginning and checks that every
// acknowledged record is at its offset, offsets have no gaps, no value
// was written twice, and the load's records are in produce order within
// each partition. It returns the acknowledged and the total count.
func (a *clusterAcks) verify(t *testing.T, c *sdk.Client, topic string) (int, int64) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	ends := nodetest.EndOffsets(t, c.Admin(), topic)
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	next := map[int32]int64{}
	lastSeq := map[int32]int{}
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		v := string(r.Value)
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
		if seen[v] {
			return fmt.Errorf("%q was written twice (again at %d/%d)", v, r.Partition, r.Offset)
		}
		seen[v] = true
		if want, ok := a.acked[r.Partition][r.Offset]; ok && want != v {
			return fmt.Errorf("%d/%d holds %q, %q was acknowledged there", r.Partition, r.Offset, v, want)
		}
		if seq, err := strconv.Atoi(strings.TrimPrefix(v, "v")); err == nil && strings.HasPrefix(v, "v") {
			if prev, ok := lastSeq[r.Partition]; ok && seq <= prev {
				return fmt.Errorf("partition %d: %q at offset %d after v%06d", r.Partition, v, r.Offset, prev)
			}
			lastSeq[r.Partition] = seq
		}
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(int(total)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for p, offs := range a.acked {
		for off, v := range offs {
			n++
			if off >= next[p] {
				t.Fatalf("acknowledged %q at %d/%d is missing (partition ends at %d)", v, p, off, next[p])
			}
		}
	}
	return n, total
}

func ackSum(m map[int32]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

// nodes asks a box's admin API for the cluster's nodes.
func clusterNodes(t *testing.T, b *clusterBox) []sdk.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := (&sdk.ClusterAdmin{URL: "http://" + b.admin()}).Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// clusterWaitNodes waits until b's admin API lists exactly the nodes of want in
// the states given.
func clusterWaitNodes(t *testing.T, b *clusterBox, want map[uint64]string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var got map[uint64]string
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ns, err := (&sdk.ClusterAdmin{URL: "http://" + b.admin()}).Nodes(ctx)
		cancel()
		lastErr = err
		got = map[uint64]string{}
		for _, n := range ns {
			got[n.ID] = n.State
		}
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("box%d's admin API lists nodes %v (%v), want %v after %s:\n%s", b.n, got, lastErr, want, d, tail(b.vm.serial(t), 3000))
}

// clusterReplicas asks a box which replicas it runs and where their logs end.
func clusterReplicas(b *clusterBox) (peers.Report, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + b.admin() + peers.ReplicasPath)
	if err != nil {
		return peers.Report{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return peers.Report{}, fmt.Errorf("%s", resp.Status)
	}
	var r peers.Report
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// clusterWaitCaughtUp waits until b runs a replica of every partition of the
// test topic and each has reached the log end its leader reports; exact
// asks for every replica on every box to end at the leader's offset (no
// load running), else a replica may trail by what arrives in a second.
func clusterWaitCaughtUp(t *testing.T, b *clusterBox, boxes []*clusterBox, exact bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var why string
	for time.Now().Before(deadline) {
		why = clusterCaughtUp(b, boxes, exact)
		if why == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("box%d did not catch up within %s: %s", b.n, d, why)
}

func clusterCaughtUp(b *clusterBox, boxes []*clusterBox, exact bool) string {
	leaderEnd := map[int32]int64{}
	ends := map[int]map[int32]int64{}
	for _, o := range boxes {
		r, err := clusterReplicas(o)
		if err != nil {
			return fmt.Sprintf("box%d: %v", o.n, err)
		}
		ends[o.n] = map[int32]int64{}
		for _, ri := range r.Replicas {
			if ri.Topic != clusterTopic {
				continue
			}
			ends[o.n][ri.Partition] = ri.EndOffset
			if ri.Leader {
				leaderEnd[ri.Partition] = ri.EndOffset
			}
		}
	}
	if len(leaderEnd) != 3 {
		return fmt.Sprintf("leaders known for %d of 3 partitions (ends %v)", len(leaderEnd), ends)
	}
	for p, end := range leaderEnd {
		for _, o := range boxes {
			if !exact && o != b {
				continue
			}
			have, ok := ends[o.n][p]
			// Under load a replica may trail the leader by the records
			// of about a second (20 a second spread over 3 partitions).
			if !ok || have < end-int64(pick(exact, 0, 20)) {
				return fmt.Sprintf("partition %d: leader at %d, box%d at %d (%v)", p, end, o.n, have, ends)
			}
		}
	}
	return ""
}

func pick(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

func clusterMetadata(t *testing.T, adm *kadm.Client, topic string) kadm.Metadata {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// clusterWaitISR waits until every partition of topic has a leader and all
// three replicas in sync.
func clusterWaitISR(t *testing.T, adm *kadm.Client, topic string, d time.Duration) kadm.Metadata {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		md := clusterMetadata(t, adm, topic)
		td := md.Topics[topic]
		ok := td.Err == nil && len(td.Partitions) == 3
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 1 || len(p.Replicas) != 3 || len(p.ISR) != 3 {
				ok = false
			}
		}
		if ok {
			return md
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not fully replicated after %s: %+v", topic, d, td)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func clusterLeader(t *testing.T, adm *kadm.Client, topic string, p int32) int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if d, ok := clusterMetadata(t, adm, topic).Topics[topic].Partitions[p]; ok && d.Leader > 0 {
			return d.Leader
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/%d has no leader", topic, p)
	return 0
}
