package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance/nodetest"
)

// run executes the command line against n over QUIC and returns stdout,
// stderr and the exit code.
func run(t *testing.T, n *nodetest.Node, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	full := append([]string{"--brokers", n.Addrs().QUIC, "--ca", n.CAFile()}, args...)
	code := Run(ctx, full, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func mustRun(t *testing.T, n *nodetest.Node, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, n, stdin, args...)
	if code != 0 {
		t.Fatalf("eddy %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestTopicCommands(t *testing.T) {
	n := nodetest.Start(t)
	out := mustRun(t, n, "", "topic", "create", "orders", "--partitions", "4", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "created topic orders with 4 partitions") {
		t.Fatalf("create: %q", out)
	}
	if _, errOut, code := run(t, n, "", "topic", "create", "orders"); code == 0 || !strings.Contains(errOut, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating twice: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, n, "", "topic", "create", "x", "--config", "retention.ms"); code == 0 || !strings.Contains(errOut, "want key=value") {
		t.Fatalf("bad --config: exit %d, %q", code, errOut)
	}
	out = mustRun(t, n, "", "topic", "list")
	if !strings.Contains(out, "orders") || !strings.Contains(out, "4") {
		t.Fatalf("list: %q", out)
	}
	mustRun(t, n, "", "topic", "alter", "orders", "--config", "segment.ms=60000", "--delete-config", "retention.ms")
	out = mustRun(t, n, "", "topic", "describe", "orders")
	for _, want := range []string{"Partitions: 4", "segment.ms", "60000", "(set on topic)", "retention.ms", "604800000"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	mustRun(t, n, "", "topic", "delete", "orders")
	if out := mustRun(t, n, "", "topic", "list"); strings.Contains(out, "orders") {
		t.Fatalf("deleted topic still listed:\n%s", out)
	}
}

func TestProduceConsume(t *testing.T) {
	n := nodetest.Start(t)
	var in strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&in, "user%d:event-%d\n", i%10, i)
	}
	out := mustRun(t, n, in.String(), "produce", "events", "--key-separator", ":", "--compression", "zstd")
	if !strings.Contains(out, "produced 1000 records") {
		t.Fatalf("produce summary: %q", out)
	}
	out = mustRun(t, n, "", "consume", "events", "--from-beginning", "--max", "1000", "--format", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1000 {
		t.Fatalf("consumed %d lines, want 1000", len(lines))
	}
	perKey := map[string]int{}
	for _, l := range lines {
		var r jsonRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if r.Key == nil || r.Value == nil || r.Topic != "events" {
			t.Fatalf("line %q", l)
		}
		var seq int
		fmt.Sscanf(*r.Value, "event-%d", &seq)
		if "user"+fmt.Sprint(seq%10) != *r.Key {
			t.Fatalf("key %s with value %s", *r.Key, *r.Value)
		}
		if last, ok := perKey[*r.Key]; ok && seq < last {
			t.Fatalf("key %s: %d after %d", *r.Key, seq, last)
		}
		perKey[*r.Key] = seq
	}
	// One partition from an offset, as plain values.
	out = mustRun(t, n, "", "consume", "events", "--partition", "0", "--offset", "2", "--max", "1")
	if !strings.HasPrefix(out, "event-") || strings.Count(out, "\n") != 1 {
		t.Fatalf("partition/offset consume: %q", out)
	}
	// Over the Kafka TCP listener too.
	var tcpOut, tcpErr bytes.Buffer
	code := Run(context.Background(), []string{"--transport", "tcp", "--brokers", n.Addrs().Kafka, "produce", "tcp-topic"},
		strings.NewReader("over tcp\n"), &tcpOut, &tcpErr)
	if code != 0 || !strings.Contains(tcpOut.String(), "produced 1 records") {
		t.Fatalf("tcp produce: exit %d %q %q", code, tcpOut.String(), tcpErr.String())
	}
}

func TestHelpAndErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"serve", "--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	for _, want := range []string{"127.0.0.1:9092", "./eddy-data", "--quic-addr", "--kafka-addr", "--admin-addr", "--raft-addr", "--config"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("serve --help lacks %q", want)
		}
	}
	out.Reset()
	if code := Run(context.Background(), []string{"produce", "t", "--compression", "brotli"}, nil, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "want none, gzip") {
		t.Fatalf("bad codec: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := Run(ctx, []string{"--brokers", "127.0.0.1:1", "--transport", "tcp", "topic", "list"}, nil, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "no broker answered") {
		t.Fatalf("unreachable broker: exit %d, %q", code, errOut.String())
	}
}
