package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// groupRounds is how many kill-and-replace rounds TestGroupConsumerProcesses
// runs per transport: 1 in make test, more (EDDY_GROUP_ROUNDS) to measure
// the median rebalance time.
func groupRounds() int {
	if n, err := strconv.Atoi(os.Getenv("EDDY_GROUP_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// consumerProc is an `eddy consume --group` child process. Its stdout
// (one JSON record per line) and stderr (assignment reports) are parsed
// as they arrive.
type consumerProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when stdout and stderr are drained

	mu       sync.Mutex
	owned    map[int32]bool
	records  []procRecord
	stderr   strings.Builder
	parseErr error
}

type procRecord struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
}

var assignmentLine = regexp.MustCompile(`^group \S+: (assigned|revoked) \S+\[([0-9 ]*)\]$`)

func startConsumerProc(t *testing.T, name string, args ...string) *consumerProc {
	t.Helper()
	c := &consumerProc{name: name, owned: map[int32]bool{}, done: make(chan struct{})}
	c.cmd = exec.Command(eddyBin, args...)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.readRecords(stdout) }()
	go func() { defer wg.Done(); c.readReports(stderr) }()
	go func() { wg.Wait(); c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("consumer %s stderr:\n%s", c.name, c.stderrText())
		}
	})
	return c
}

func (c *consumerProc) readRecords(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec procRecord
		err := json.Unmarshal(sc.Bytes(), &rec)
		c.mu.Lock()
		if err != nil && c.parseErr == nil {
			c.parseErr = fmt.Errorf("consumer %s printed %q: %w", c.name, sc.Text(), err)
		}
		c.records = append(c.records, rec)
		c.mu.Unlock()
	}
}

func (c *consumerProc) readReports(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.stderr.WriteString(line + "\n")
		if m := assignmentLine.FindStringSubmatch(line); m != nil {
			for _, f := range strings.Fields(m[2]) {
				p, _ := strconv.Atoi(f)
				c.owned[int32(p)] = m[1] == "assigned"
			}
		}
		c.mu.Unlock()
	}
}

func (c *consumerProc) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// partitions returns what the process owns now.
func (c *consumerProc) partitions() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int32
	for p, own := range c.owned {
		if own {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// stop ends the process: SIGKILL, as a crash, or SIGINT, as an operator.
func (c *consumerProc) stop(sig syscall.Signal) {
	c.cmd.Process.Signal(sig)
	<-c.done
}

// coverage reports whether members together own every partition 0..n-1,
// each exactly once, with every member owning at least one.
func coverage(members []*consumerProc, n int) bool {
	seen := map[int32]int{}
	for _, m := range members {
		ps := m.partitions()
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			seen[p]++
		}
	}
	if len(seen) != n {
		return false
	}
	for _, k := range seen {
		if k != 1 {
			return false
		}
	}
	return true
}

// TestGroupConsumerProcesses runs three `eddy consume --group` processes
// (kgo underneath, cooperative-sticky) on a 12-partition topic over QUIC
// and over TCP while a producer writes. Each round SIGKILLs one member and
// times how long its partitions take to reach the others, then starts a
// new member and waits for it to receive partitions. At the end every
// acknowledged record has been printed at least once, every offset of
// every partition was read (none skipped), and the group's committed
// offsets are the partitions' ends.
func TestGroupConsumerProcesses(t *testing.T) {
	for _, tr := range []sdk.Transport{sdk.QUIC, sdk.TCP} {
		t.Run(string(tr), func(t *testing.T) { testGroupConsumerProcesses(t, tr) })
	}
}

func testGroupConsumerProcesses(t *testing.T, tr sdk.Transport) {
	const (
		topic      = "clicks"
		group      = "click-counters"
		partitions = 12
		session    = 6 * time.Second
	)
	n := nodetest.Start(t)
	client := n.Client(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if resp, err := client.Admin().CreateTopic(ctx, partitions, 1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	addr := n.Addrs().QUIC
	if tr == sdk.TCP {
		addr = n.Addrs().Kafka
	}
	consumerArgs := []string{"--brokers", addr, "--transport", string(tr), "--ca", n.CAFile(),
		"consume", topic, "--group", group, "--from-beginning", "--format", "json",
		"--session-timeout", session.String()}
	if tr == sdk.TCP {
		consumerArgs = slices.DeleteFunc(slices.Clone(consumerArgs), func(s string) bool { return s == "--ca" || s == n.CAFile() })
	}
	var all []*consumerProc
	spawn := func() *consumerProc {
		c := startConsumerProc(t, fmt.Sprintf("c%d", len(all)), consumerArgs...)
		all = append(all, c)
		return c
	}
	live := []*consumerProc{spawn(), spawn(), spawn()}
	waitFor(t, "three members to share the 12 partitions", 60*time.Second, func() bool { return coverage(live, partitions) })

	// Produce throughout, idempotently, remembering every acknowledgement.
	acked := map[string]bool{}
	var ackMu sync.Mutex
	stop := make(chan struct{})
	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("click-%d", i)
			client.Kgo().Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err == nil {
					ackMu.Lock()
					acked[v] = true
					ackMu.Unlock()
				}
			})
			if i%20 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()

	var moves, joins []time.Duration
	for round := range groupRounds() {
		time.Sleep(time.Second)
		victim := live[round%len(live)]
		killed := time.Now()
		victim.stop(syscall.SIGKILL)
		live = slices.DeleteFunc(live, func(c *consumerProc) bool { return c == victim })
		waitFor(t, "the killed member's partitions to move", 3*session, func() bool { return coverage(live, partitions) })
		moves = append(moves, time.Since(killed))

		time.Sleep(500 * time.Millisecond)
		joined := time.Now()
		newcomer := spawn()
		live = append(live, newcomer)
		waitFor(t, "the new member to receive partitions", 3*session, func() bool { return coverage(live, partitions) })
		joins = append(joins, time.Since(joined))
	}
	close(stop)
	<-producerDone
	if err := client.Kgo().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ends := nodetest.EndOffsets(t, client.Admin(), topic)

	// Let the members catch up, then stop them as an operator would: they
	// commit what they printed and leave.
	waitFor(t, "every acknowledged record to be printed", 60*time.Second, func() bool {
		printed := printedValues(all)
		ackMu.Lock()
		defer ackMu.Unlock()
		for v := range acked {
			if !printed[v] {
				return false
			}
		}
		return true
	})
	for _, c := range live {
		c.stop(syscall.SIGINT)
	}

	// Nothing skipped: the members' records cover every offset.
	read := map[int32]map[int64]bool{}
	for _, c := range all {
		c.mu.Lock()
		if c.parseErr != nil {
			t.Fatal(c.parseErr)
		}
		for _, r := range c.records {
			if read[r.Partition] == nil {
				read[r.Partition] = map[int64]bool{}
			}
			read[r.Partition][r.Offset] = true
		}
		c.mu.Unlock()
	}
	total := int64(0)
	ends.Each(func(end kadm.ListedOffset) {
		total += end.Offset
		for off := int64(0); off < end.Offset; off++ {
			if !read[end.Partition][off] {
				t.Fatalf("partition %d offset %d was never printed by any member", end.Partition, off)
			}
		}
	})
	committed, err := client.Admin().FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(end kadm.ListedOffset) {
		if got, ok := committed.Lookup(topic, end.Partition); !ok || got.At != end.Offset {
			t.Errorf("partition %d: committed %v after the members stopped, end is %d", end.Partition, got.At, end.Offset)
		}
	})
	reread := 0
	for _, c := range all {
		reread += len(c.records)
	}
	reread -= int(total)
	t.Logf("%s: %d records over %d members; %d printed again after a kill; partitions moved %v after a kill (session timeout %v), a newcomer got partitions after %v",
		tr, total, len(all), reread, moves, session, joins)
	if len(moves) > 1 {
		t.Logf("%s: median rebalance after a kill %v, after a join %v", tr, median(moves), median(joins))
	}
}

func printedValues(cs []*consumerProc) map[string]bool {
	out := map[string]bool{}
	for _, c := range cs {
		c.mu.Lock()
		for _, r := range c.records {
			out[r.Value] = true
		}
		c.mu.Unlock()
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
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
