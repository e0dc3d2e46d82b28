package appliance_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// groupLog records what group members processed.
type groupLog struct {
	mu   sync.Mutex
	read map[int32]map[int64]bool
	n    int
}

func (l *groupLog) process(r *kgo.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read[r.Partition] == nil {
		l.read[r.Partition] = map[int64]bool{}
	}
	l.read[r.Partition][r.Offset] = true
	l.n++
	return nil
}

// has reports whether every acknowledged record was processed.
func (l *groupLog) has(acked *ackLog) bool {
	acked.mu.Lock()
	defer acked.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, offs := range acked.acked {
		for off := range offs {
			if !l.read[p][off] {
				return false
			}
		}
	}
	return true
}

func committedOffsets(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	var lastErr error
	// After a full restart the group shards elect leaders and load before
	// a coordinator answers; under the race detector on two cores that can
	// take well over ten seconds (30 s was seen in make test).
	for range 900 {
		resp, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			for p, o := range resp[topic] {
				out[p] = o.At
			}
			return out
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fetch committed offsets of %s: %v", group, lastErr)
	return nil
}

func groupCoordinator(ctx context.Context, t *testing.T, adm *kadm.Client, group string) int32 {
	t.Helper()
	var lastErr error
	for range 100 {
		resp := adm.FindGroupCoordinators(ctx, group)
		if c, ok := resp[group]; ok && c.Err == nil {
			return c.NodeID
		} else if ok {
			lastErr = c.Err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("find the coordinator of %s: %v", group, lastErr)
	return 0
}

// TestGroupCoordinatorFailover: three group members consume a 12-partition
// topic of a 3-node cluster over QUIC, committing as they process, while
// a producer writes. The node coordinating the group is stopped: no
// offset the group had committed is lost, the members carry on with the
// new coordinator, every record is processed and none is skipped. The
// committed offsets then survive a full cluster restart.
func TestGroupCoordinatorFailover(t *testing.T) {
	const (
		topic = "payments"
		group = "ledger"
	)
	nodes := nodetest.StartCluster(t, 3)
	c := clusterClient(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if resp, err := c.Admin().CreateTopic(ctx, 12, 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}

	processed := &groupLog{read: map[int32]map[int64]bool{}}
	var kgoLog syncBuf
	kgoLevel := kgo.LogLevelNone
	if os.Getenv("KGOLOG") != "" {
		kgoLevel = kgo.LogLevelInfo
	}
	defer func() {
		if t.Failed() {
			os.WriteFile("/tmp/kgo-members.log", kgoLog.bytes(), 0o644)
		}
	}()
	var members []*sdk.GroupConsumer
	var running sync.WaitGroup
	runCtx, stopMembers := context.WithCancel(ctx)
	for i := range 3 {
		m, err := c.NewGroupConsumer(group, []string{topic}, sdk.StartFromBeginning(),
			sdk.CommitInterval(200*time.Millisecond), sdk.WithSessionTimeout(6*time.Second),
			sdk.WithGroupKgoOptions(kgo.WithLogger(kgo.BasicLogger(&kgoLog, kgoLevel, func() string { return time.Now().Format("15:04:05.000 ") + fmt.Sprintf("M%d ", i) }))))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
		running.Add(1)
		go func() {
			defer running.Done()
			if err := m.Run(runCtx, processed.process); err != nil {
				t.Errorf("member %d: %v", i, err)
			}
		}()
	}
	defer func() {
		stopMembers()
		running.Wait()
		for _, m := range members {
			m.Close()
		}
	}()

	acked := newAckLog()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); produceUntil(ctx, c.Kgo(), topic, acked, stop) }()
	waitFor(t, "3000 acknowledged records", 60*time.Second, func() bool { return acked.count.Load() >= 3000 })
	waitFor(t, "the group to commit offsets", 90*time.Second, func() bool {
		// Keys hash to some of the partitions only.
		acked.mu.Lock()
		withRecords := len(acked.acked)
		acked.mu.Unlock()
		return len(committedOffsets(ctx, t, c.Admin(), group, topic)) == withRecords
	})

	coordinator := groupCoordinator(ctx, t, c.Admin(), group)
	before := committedOffsets(ctx, t, c.Admin(), group, topic)
	victim := nodes[coordinator-1]
	var survivors []*nodetest.Node
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	t.Logf("stopping node %d, the group's coordinator, with offsets committed up to %v", coordinator, before)
	stopped := time.Now()
	victim.Stop()

	admin := clusterClient(t, survivors).Admin()
	next := groupCoordinator(ctx, t, admin, group)
	for next == coordinator {
		time.Sleep(50 * time.Millisecond)
		next = groupCoordinator(ctx, t, admin, group)
	}
	after := committedOffsets(ctx, t, admin, group, topic)
	t.Logf("node %d coordinates the group %v after the stop", next, time.Since(stopped))
	for p, off := range before {
		if after[p] < off {
			t.Fatalf("partition %d: offset %d was committed before the coordinator stopped, the new coordinator has %d", p, off, after[p])
		}
	}
	// The members carry on: more records are produced and processed.
	mark := acked.count.Load()
	waitFor(t, "2000 more acknowledged records", 60*time.Second, func() bool { return acked.count.Load() >= mark+2000 })
	// Every member commits through the new coordinator once it finds it
	// (a member learns of the move at its next heartbeat or commit).
	waitFor(t, "every partition's committed offset to advance", 90*time.Second, func() bool {
		now := committedOffsets(ctx, t, admin, group, topic)
		for p, off := range before {
			if now[p] <= off {
				return false
			}
		}
		return true
	})
	close(stop)
	<-done
	if err := c.Kgo().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every acknowledged record to be processed", 90*time.Second, func() bool { return processed.has(acked) })
	stopMembers()
	running.Wait()
	for _, m := range members {
		m.Close() // commits what was processed and leaves
	}

	ends := map[int32]int64{}
	var err error
	for range 50 {
		var listed kadm.ListedOffsets
		if listed, err = admin.ListEndOffsets(ctx, topic); err == nil {
			err = listed.Error()
		}
		if err == nil {
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	processed.mu.Lock()
	for p, end := range ends {
		for off := range end {
			if !processed.read[p][off] {
				t.Fatalf("partition %d offset %d was never processed", p, off)
			}
		}
	}
	t.Logf("%d records processed (%d of them again after the failover) across 12 partitions", processed.n, processed.n-sumOffsets(ends))
	processed.mu.Unlock()
	// The checks after the run get their own deadline: under the race
	// detector on two loaded cores the run can use most of ctx's.
	checkCtx, checkCancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer checkCancel()
	final := committedOffsets(checkCtx, t, admin, group, topic)
	for p, end := range ends {
		if end == 0 {
			continue // no record, nothing committed
		}
		if final[p] != end {
			t.Fatalf("partition %d: committed %d after the members left, end %d (all: %v, ends %v)", p, final[p], end, final, ends)
		}
	}

	// A full restart keeps the committed offsets.
	for _, n := range survivors {
		n.Stop()
	}
	nodetest.StartAll(t, nodes...)
	restarted := committedOffsets(checkCtx, t, clusterClient(t, nodes).Admin(), group, topic)
	if fmt.Sprint(restarted) != fmt.Sprint(final) {
		t.Fatalf("after a full restart the group has %v committed, before it had %v", restarted, final)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b...)
}

func sumOffsets(m map[int32]int64) int {
	total := int64(0)
	for _, v := range m {
		total += v
	}
	return int(total)
}
