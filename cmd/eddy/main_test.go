package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
)

// eddyBin is the eddy binary built once for the process tests.
var eddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	eddyBin = filepath.Join(dir, "eddy")
	if out, err := exec.Command("go", "build", "-o", eddyBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build eddy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is an `eddy serve` child process.
type proc struct {
	cmd   *exec.Cmd
	kafka string
	quic  string
	admin string
	data  string
	args  []string
	log   *os.File
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newProc(t *testing.T, dataDir string) *proc {
	kafka := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	raft := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	log, err := os.Create(filepath.Join(t.TempDir(), "eddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("node log:\n%s", b)
		}
	})
	return &proc{kafka: kafka, admin: admin, log: log, args: []string{"serve", "--data", dataDir,
		"--kafka-addr", kafka, "--quic-addr", kafka, "--admin-addr", admin, "--raft-addr", raft, "--log-format", "json"}}
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.launch(t)
	p.waitReady(t)
}

// launch starts the process without waiting for it to serve.
func (p *proc) launch(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(eddyBin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := p.cmd
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// waitReady waits until the node's /readyz answers 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("eddy serve did not become ready in 60s")
}

func (p *proc) kill9() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.cmd.Wait()
	return nil
}

// TestKillNineLosesNoAcknowledgedRecord runs eddy as a child process,
// produces continuously with acks=all, kills the process with SIGKILL
// mid-stream, restarts it on the same data, and checks that every
// acknowledged record is present at its acknowledged offset and that new
// offsets continue after the last record on disk.
func TestKillNineLosesNoAcknowledgedRecord(t *testing.T) {
	p := newProc(t, t.TempDir())
	p.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const topic = "crash"
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.RecordRetries(0), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = map[int32]map[int64]string{}
		count int
	)
	killed := make(chan error, 1)
	go func() {
		for {
			mu.Lock()
			c := count
			mu.Unlock()
			if c >= 20000 {
				killed <- p.kill9()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var killErr error
	for i := 0; ; i++ {
		select {
		case killErr = <-killed:
		default:
			v := fmt.Sprintf("v%d", i)
			cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 13)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				mu.Lock()
				if acked[r.Partition] == nil {
					acked[r.Partition] = map[int64]string{}
				}
				acked[r.Partition][r.Offset] = v
				count++
				mu.Unlock()
			})
			continue
		}
		break
	}
	cl.Close()
	if killErr != nil {
		t.Fatal(killErr)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("killed after %d acknowledged records", count)

	p.start(t)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	ends := map[int32]int64{}
	found := 0
	idle := time.Now()
	for found < count && time.Since(idle) < 10*time.Second {
		fs := cl2.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			if r.Offset != ends[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d: a gap", r.Partition, r.Offset, ends[r.Partition])
			}
			ends[r.Partition] = r.Offset + 1
			if v, ok := acked[r.Partition][r.Offset]; ok {
				if v != string(r.Value) {
					t.Fatalf("%d/%d: value %q, acknowledged %q", r.Partition, r.Offset, r.Value, v)
				}
				found++
			}
		})
	}
	if found != count {
		t.Fatalf("after the restart %d of %d acknowledged records are readable", found, count)
	}
	endOffsets := nodetest.EndOffsets(t, kadm.NewClient(cl2), topic)
	res := cl2.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("0"), Value: []byte("after")})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := res[0].Record
	end, _ := endOffsets.Lookup(topic, r.Partition)
	if r.Offset != end.Offset || r.Offset < ends[r.Partition] {
		t.Fatalf("new record got offset %d in partition %d; the log ended at %d and %d was read", r.Offset, r.Partition, end.Offset, ends[r.Partition])
	}
}
