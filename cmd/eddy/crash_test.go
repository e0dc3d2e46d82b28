package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/crashdisk"
)

// crashPoints are the write-path windows the process test aims kills at
// (partlog.CrashPoint): inside an append, a segment roll, the sync and
// checkpoint Dragonboat's snapshots trigger, after a Raft commit before
// and after it is applied, and in the cut back to the checkpoint at start.
// The last two are passed while the node starts, not under load.
var crashPoints = []struct {
	name    string
	maxPass int
}{
	{"partlog.append.written", 400},
	{"partlog.roll.sealed", 6},
	{"partlog.roll.created", 6},
	{"partlog.sync.data", 20},
	{"fsm.sync.log-synced", 10},
	{"fsm.checkpoint.tmp-written", 10},
	{"fsm.checkpoint.renamed", 10},
	{"fsm.update.begin", 400},
	{"fsm.update.applied", 400},
	{"fsm.open.rolled-back", 3},
	{"partlog.truncate.index-cut", 2},
}

// crashProc runs an `eddy serve` child that the test expects to die.
type crashProc struct {
	*proc
	done chan struct{} // closed when the process has exited
}

// launchCrashProc starts p with env added and reaps it in the background.
func launchCrashProc(t *testing.T, p *proc, env ...string) *crashProc {
	t.Helper()
	cmd := exec.Command(eddyBin, p.args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	cp := &crashProc{proc: p, done: make(chan struct{})}
	go func() { cmd.Wait(); close(cp.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-cp.done })
	return cp
}

func (cp *crashProc) kill9() {
	cp.cmd.Process.Signal(syscall.SIGKILL)
	<-cp.done
}

// waitReadyOrDead waits for /readyz or for the process to exit; it
// reports whether the node is serving.
func (cp *crashProc) waitReadyOrDead(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-cp.done:
			return false
		default:
		}
		resp, err := http.Get("http://" + cp.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
	}
	t.Fatalf("eddy serve neither ready nor dead after %v", timeout)
	return false
}

// ackLedger is what the producer sent and what the broker acknowledged.
type ackLedger struct {
	mu       sync.Mutex
	sent     map[string]bool
	acked    map[int32]map[int64]string
	nAcked   int
	failures map[string]int // record errors by message
}

func (a *ackLedger) promise(v string) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.failures[err.Error()]++
			return
		}
		if a.acked[r.Partition] == nil {
			a.acked[r.Partition] = map[int64]string{}
		}
		a.acked[r.Partition][r.Offset] = v
		a.nAcked++
	}
}

// TestCrashKillNineAtRandomPoints runs eddy as a child process under an
// idempotent acks=all producer and kills it with SIGKILL again and again:
// after random delays, and from inside the write path at a random pass of
// a crash point (EDDY_CRASHPOINT). After each restart on the same data
// directory, the producer's retries are flushed and every partition is
// read back: each acknowledged record must be at its acknowledged offset,
// offsets must run without a gap from the log start, and no record may
// appear twice or without having been sent. EDDY_CRASH_KILLS sets the
// number of kills (default 5), EDDY_CRASH_SEED replays a run.
func TestCrashKillNineAtRandomPoints(t *testing.T) {
	seed := crashdisk.Seed(t)
	iterations := 5
	if v := os.Getenv("EDDY_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EDDY_CRASH_KILLS=%q: want a positive number", v)
		}
		iterations = n
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	cfgPath := filepath.Join(t.TempDir(), "node.yaml")
	// Frequent checkpoints (and Raft log compaction) so kills land in and
	// between them.
	if err := os.WriteFile(cfgPath, []byte("raft:\n  snapshot_entries: 16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, t.TempDir())
	p.args = append(p.args, "--config", cfgPath)
	node := launchCrashProc(t, p)
	if !node.waitReadyOrDead(t, 60*time.Second) {
		t.Fatal("eddy serve exited at its first start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "crash"
	adm, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	seg := "16384" // small segments: rolls under load
	if resp, err := kadm.NewClient(adm).CreateTopic(ctx, 3, 1, map[string]*string{"segment.bytes": &seg}, topic); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}

	// One idempotent producer for the whole run: its retries of batches
	// in flight at a kill reach the restarted node and must be recognised.
	prod, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(2000),
		// Find the restarted node quickly.
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }), kgo.MetadataMinAge(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	led := &ackLedger{sent: map[string]bool{}, acked: map[int32]map[int64]string{}, failures: map[string]int{}}
	var producing sync.Mutex // held while the load is paused
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
			producing.Lock()
			v := fmt.Sprintf("r%d", i)
			led.mu.Lock()
			led.sent[v] = true
			led.mu.Unlock()
			// A full buffer fails the record at once (the promise counts
			// it) instead of blocking a pause.
			prod.TryProduce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 13)), Value: []byte(v)}, led.promise(v))
			producing.Unlock()
			if i%50 == 0 || prod.BufferedProduceRecords() > 1500 {
				time.Sleep(10 * time.Millisecond) // at most about 5000 records/s
			}
		}
	}()
	paused := false // by this goroutine, which then holds producing
	pause := func() { producing.Lock(); paused = true }
	resume := func() { paused = false; producing.Unlock() }
	defer func() {
		close(stop)
		if paused {
			producing.Unlock()
		}
		<-loadDone
	}()

	time.Sleep(500 * time.Millisecond) // something to lose at the first kill
	var planned []string
	for it := range iterations {
		point := ""
		if it%3 != 2 { // two kills in three from inside the write path
			cp := crashPoints[rng.IntN(len(crashPoints))]
			point = fmt.Sprintf("%s:%d", cp.name, 1+rng.IntN(cp.maxPass))
			// Restart with the crash point armed; the running node dies
			// idle first (also a crash, checked below).
			pause()
			node.kill9()
			node = launchCrashProc(t, p, partlog.CrashPointEnv+"="+point)
			node.waitReadyOrDead(t, 60*time.Second)
			resume()
			select {
			case <-node.done:
			case <-time.After(6 * time.Second):
				t.Logf("kill %d: crash point %s not reached in 6 s; SIGKILL instead", it, point)
				node.kill9()
			}
		} else {
			delay := time.Duration(200+rng.IntN(2300)) * time.Millisecond
			time.Sleep(delay)
			point = fmt.Sprintf("after %v", delay)
			node.kill9()
		}
		planned = append(planned, point)
		pause()
		restarted := time.Now()
		node = launchCrashProc(t, p)
		if !node.waitReadyOrDead(t, 60*time.Second) {
			t.Fatalf("kill %d (%s): eddy serve exited while restarting", it, point)
		}
		t.Logf("kill %d (%s): ready %v after the restart", it, point, time.Since(restarted).Round(time.Millisecond))
		fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
		if err := prod.Flush(fctx); err != nil {
			t.Fatalf("kill %d (%s): the producer's retries did not finish after the restart: %v", it, point, err)
		}
		fcancel()
		checkAfterCrash(t, ctx, p.kafka, topic, led, fmt.Sprintf("kill %d (%s)", it, point))
		resume()
	}
	b, _ := os.ReadFile(p.log.Name())
	led.mu.Lock()
	defer led.mu.Unlock()
	t.Logf("%d kills (%s); %d crash-point deaths confirmed in the node log; %d records acknowledged; record errors %v",
		iterations, strings.Join(planned, ", "), strings.Count(string(b), "eddy: crash point "), led.nAcked, led.failures)
}

// checkAfterCrash reads every partition of topic from its start and checks
// it against the ledger.
func checkAfterCrash(t *testing.T, ctx context.Context, seed, topic string, led *ackLedger, when string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Ready is not led: partitions may still be electing.
	var starts kadm.ListedOffsets
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if starts, err = adm.ListStartOffsets(ctx, topic); err == nil {
			err = starts.Error()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: list start offsets: %v", when, err)
		}
	}
	ends := nodetest.EndOffsets(t, adm, topic)
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if s.Offset != 0 {
			t.Errorf("%s: partition %d starts at %d: nothing should have been deleted", when, o.Partition, s.Offset)
		}
		offsets[topic][o.Partition] = kgo.NewOffset().At(s.Offset)
		want[o.Partition] = o.Offset
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := map[int32]int64{}
	seen := map[string]string{}
	led.mu.Lock()
	defer led.mu.Unlock()
	done := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	for !done() {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("%s: read %v of %v", when, next, want)
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: fetch partition %d: %v", when, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			where := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			v := string(r.Value)
			switch {
			case r.Offset != next[r.Partition]:
				t.Fatalf("%s: partition %d: offset %d follows %d: a gap", when, r.Partition, r.Offset, next[r.Partition]-1)
			case !led.sent[v]:
				t.Fatalf("%s: %s holds %q, which was never sent", when, where, v)
			case seen[v] != "":
				t.Fatalf("%s: %q is at %s and at %s: a duplicate", when, v, seen[v], where)
			}
			seen[v] = where
			next[r.Partition] = r.Offset + 1
		})
	}
	for p, end := range want {
		if next[p] != end {
			t.Fatalf("%s: partition %d: read up to %d, end offset %d", when, p, next[p], end)
		}
	}
	lost := 0
	for p, byOff := range led.acked {
		for off, v := range byOff {
			if got := seen[v]; got != fmt.Sprintf("%d/%d", p, off) {
				lost++
				if lost <= 10 {
					t.Errorf("%s: %q was acknowledged at %d/%d, read at %q", when, v, p, off, got)
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%s: %d acknowledged records lost or moved", when, lost)
	}
	var total int64
	for _, end := range want {
		total += end
	}
	t.Logf("%s: %d records in %d partitions read back, all %d acknowledged present", when, total, len(want), led.nAcked)
}
