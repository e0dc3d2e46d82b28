package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/plugins/pluginstest"
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

// TestPluginCommands drives the plugin lifecycle through the CLI: upload
// the JSON Schema validator, attach it, produce valid and invalid lines
// (each refused line explained), describe, detach and delete.
func TestPluginCommands(t *testing.T) {
	pluginstest.SkipUnderRace(t)
	n := nodetest.Start(t)
	dir := t.TempDir()
	wasm := filepath.Join(dir, "jsonschema.wasm")
	if err := os.WriteFile(wasm, pluginstest.Example(t, "jsonschema"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + n.Addrs().Admin
	out := mustRun(t, n, "", "--admin", admin, "plugin", "upload", "orders-schema", wasm)
	if !strings.Contains(out, "uploaded orders-schema version 1 (validator") {
		t.Fatalf("upload: %q", out)
	}
	mustRun(t, n, "", "topic", "create", "orders", "--partitions", "1",
		"--config", "eddy.validator=orders-schema",
		"--config", `eddy.validator.config.schema={"type":"object","required":["id"]}`)
	if _, errOut, code := run(t, n, "", "topic", "create", "bad", "--config", "eddy.validator=orders-schema",
		"--config", `eddy.validator.config.schema={"type":`); code == 0 || !strings.Contains(errOut, "schema") {
		t.Fatalf("a schema that does not parse: exit %d, %q", code, errOut)
	}
	out, errOut, code := run(t, n, "{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n{\"x\":1}\n", "produce", "orders")
	if code == 0 {
		t.Fatalf("producing invalid lines succeeded: %s %s", out, errOut)
	}
	for _, want := range []string{"line 2 rejected: value: not JSON", "line 4 rejected: value: missing property 'id'"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("produce stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "produced 2 records") {
		t.Fatalf("produce summary: %q", out)
	}
	out = mustRun(t, n, "", "--admin", admin, "plugin", "list")
	if !strings.Contains(out, "orders-schema") || !strings.Contains(out, "orders (eddy.validator)") {
		t.Fatalf("list: %q", out)
	}
	out = mustRun(t, n, "", "--admin", admin, "plugin", "describe", "orders-schema")
	for _, want := range []string{"version 1 (latest)", "validator", "used by:  orders (eddy.validator)", "calls"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, code := run(t, n, "", "--admin", admin, "plugin", "delete", "orders-schema", "--version", "1"); code == 0 || !strings.Contains(errOut, "used by orders") {
		t.Fatalf("deleting a used plugin: exit %d, %q", code, errOut)
	}
	mustRun(t, n, "", "topic", "alter", "orders", "--delete-config", "eddy.validator")
	mustRun(t, n, "not json\n", "produce", "orders")
	out = mustRun(t, n, "", "--admin", admin, "plugin", "delete", "orders-schema", "--version", "1")
	if !strings.Contains(out, "deleted orders-schema version 1") {
		t.Fatalf("delete: %q", out)
	}
}
