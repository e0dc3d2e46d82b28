package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// A fresh node coordinates groups as soon as it has created the group
// shards, not at the next periodic reconcile.
func TestGroupCoordinatorReadySoonAfterStart(t *testing.T) {
	started := time.Now()
	n := nodetest.Start(t)
	cl := n.KgoClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "early-bird"
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode == 0 {
			break
		}
		if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("FindCoordinator: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The periodic reconcile runs every 5 s; the shards must not wait for it.
	if took := time.Since(started); took > 4*time.Second {
		t.Fatalf("the group coordinator answered %v after the node started", took)
	}
}

// TestKcatAndKgoShareGroup: kcat's balanced consumer (librdkafka, over
// TCP) and an SDK group member (kgo, over QUIC) join one group with the
// range assignor. They split the partitions between them, read every
// record once between them, and commit where they stopped.
func TestKcatAndKgoShareGroup(t *testing.T) {
	kcat := kcatPath(t)
	n := nodetest.Start(t)
	const (
		topic = "mixed"
		group = "mixed-readers"
		total = 600
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := n.Client(t, sdk.QUIC)
	createTopic(ctx, t, c, topic, 6)

	// kcat prints "partition offset value" per record; -u unbuffers.
	kc := exec.CommandContext(ctx, kcat, "-b", n.Addrs().Kafka, "-G", group, topic, "-u", "-q",
		"-f", "%p %o %s\n", "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000")
	stdout, err := kc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var kcatErr bytes.Buffer
	kc.Stderr = &kcatErr
	if err := kc.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	kcatParts := map[int32]bool{}
	seen := map[string]int{}
	kcatDone := make(chan struct{})
	go func() {
		defer close(kcatDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var p int32
			var off int64
			var v string
			if _, err := fmt.Sscanf(sc.Text(), "%d %d %s", &p, &off, &v); err != nil {
				continue
			}
			mu.Lock()
			kcatParts[p] = true
			seen[v]++
			mu.Unlock()
		}
	}()
	defer func() {
		kc.Process.Kill()
		<-kcatDone
		kc.Wait()
		if t.Failed() {
			t.Logf("kcat stderr:\n%s", kcatErr.String())
		}
	}()

	kgoParts := map[int32]bool{}
	member, err := c.NewGroupConsumer(group, []string{topic}, sdk.WithAssignors(sdk.Range),
		sdk.StartFromBeginning(), sdk.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopMember := context.WithCancel(ctx)
	memberDone := make(chan error, 1)
	go func() {
		memberDone <- member.Run(runCtx, func(r *kgo.Record) error {
			mu.Lock()
			defer mu.Unlock()
			kgoParts[r.Partition] = true
			seen[string(r.Value)]++
			return nil
		})
	}()

	adm := c.Admin()
	waitGroup := func(what string, cond func(kadm.DescribedGroup) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			described, err := adm.DescribeGroups(ctx, group)
			if err == nil {
				if g, ok := described[group]; ok && cond(g) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (last: %+v, %v)", what, described[group], err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitGroup("kcat and the SDK member to share the six partitions", func(g kadm.DescribedGroup) bool {
		if g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 2 {
			return false
		}
		owned := 0
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			for _, tp := range a.Topics {
				owned += len(tp.Partitions)
			}
		}
		return owned == 6
	})

	resp, err := http.Get("http://" + n.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"eddy_consumer_groups 1", "eddy_consumer_group_members 2", "eddy_group_coordinator_shards 4"} {
		if !bytes.Contains(body, []byte(want+"\n")) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}

	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("m%d", i))})
	}
	if err := c.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kcat and the SDK member read %d of %d records", got, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	for p := range kcatParts {
		if kgoParts[p] {
			t.Fatalf("partition %d was read by both kcat and the SDK member", p)
		}
	}
	if len(kcatParts) == 0 || len(kgoParts) == 0 {
		t.Fatalf("kcat read partitions %v, the SDK member %v: they should share", kcatParts, kgoParts)
	}
	for v, k := range seen {
		if k != 1 {
			t.Fatalf("%s was read %d times", v, k)
		}
	}
	mu.Unlock()

	// Both leave, committing where they stopped.
	stopMember()
	if err := <-memberDone; err != nil {
		t.Fatal(err)
	}
	member.Close()
	kc.Process.Signal(syscall.SIGTERM)
	<-kcatDone
	kc.Wait()
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(end kadm.ListedOffset) {
		if got, ok := committed.Lookup(topic, end.Partition); end.Offset > 0 && (!ok || got.At != end.Offset) {
			t.Errorf("partition %d: committed %v, end %d", end.Partition, got.At, end.Offset)
		}
	})
	t.Logf("kcat read partitions %v, the SDK member %v", keys(kcatParts), keys(kgoParts))
}

func keys(m map[int32]bool) []int32 {
	var out []int32
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
