package appliance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// TestRestartKeepsRecords produces, restarts the node, and checks every
// acknowledged record is still there and new offsets continue where they
// stopped. With snapshots every 5 entries the Raft log is compacted while
// producing; with the default, the partitions are checkpointed only by the
// clean stop. (Replay after a crash is covered by cmd/eddy's SIGKILL test
// and raftgroups/fsm.)
func TestRestartKeepsRecords(t *testing.T) {
	for _, snapEvery := range []uint64{5, 0} {
		t.Run(fmt.Sprintf("snapshot_entries=%d", snapEvery), func(t *testing.T) {
			n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Raft.SnapshotEntries = snapEvery }))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const topic, perRound = "durable", 5000
			c := n.Client(t, sdk.QUIC)
			first := produceRound(ctx, t, c, topic, 0, perRound)
			c.Close()
			checkpoints, _ := filepath.Glob(filepath.Join(n.Config.DataDir, "partitions", "*", "checkpoint.json"))
			if snapEvery > 0 && len(checkpoints) == 0 {
				t.Fatal("no partition wrote a checkpoint; the snapshot path was not exercised")
			}

			n.Restart()

			c = n.Client(t, sdk.QUIC)
			second := produceRound(ctx, t, c, topic, perRound, perRound)
			for p, offs := range second {
				if want := int64(len(first[p])); offs[0] != want {
					t.Fatalf("partition %d: first offset after restart is %d, want %d", p, offs[0], want)
				}
			}
			want := map[int32][]int64{}
			for _, m := range []map[int32][]int64{first, second} {
				for p, offs := range m {
					want[p] = append(want[p], offs...)
				}
			}
			readAll(ctx, t, c, topic, want, 2*perRound)
		})
	}
}

// produceRound writes n records with values "v<i>" from index from, with
// a few keys, one at a time in order; it returns the acknowledged offsets
// per partition in production order.
func produceRound(ctx context.Context, t *testing.T, c *sdk.Client, topic string, from, n int) map[int32][]int64 {
	t.Helper()
	out := map[int32][]int64{}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", (from+i)%7)), Value: []byte(fmt.Sprintf("v%d", from+i))}
	}
	for _, r := range c.Kgo().ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce: %v", r.Err)
		}
		out[r.Record.Partition] = append(out[r.Record.Partition], r.Record.Offset)
	}
	return out
}

// readAll checks the topic holds exactly want: per partition, offsets
// 0..n-1 in order.
func readAll(ctx context.Context, t *testing.T, c *sdk.Client, topic string, want map[int32][]int64, total int) {
	t.Helper()
	next := map[int32]int64{}
	err := c.Consume(ctx, topic, func(r *kgo.Record) error {
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: offset %d, expected %d", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(total))
	if err != nil {
		t.Fatal(err)
	}
	for p, offs := range want {
		if next[p] != int64(len(offs)) {
			t.Fatalf("partition %d: read %d records, %d acknowledged", p, next[p], len(offs))
		}
	}
}

// TestAdminEndpoints checks health, readiness and metrics on the admin port.
func TestAdminEndpoints(t *testing.T) {
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.Client(t, sdk.TCP)
	if err := c.Produce(ctx, &kgo.Record{Topic: "metered", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `eddy_kafka_requests_total{api="Produce"} 1`,
	} {
		resp, err := http.Get("http://" + n.Addrs().Admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, body does not contain %q:\n%.2000s", path, resp.StatusCode, want, body)
		}
	}
	resp, _ := http.Get("http://" + n.Addrs().Admin + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"eddy_produce_records_total 1", "eddy_partition_replicas 3", "eddy_partition_leaders 3", "eddy_kafka_request_seconds_bucket"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}
