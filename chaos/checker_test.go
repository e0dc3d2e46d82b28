package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// writeReplica lays out one partition replica as raftgroups does
// (partitions/<shard>/{PARTITION,log/}) holding n one-record batches.
func writeReplica(t *testing.T, dataDir string, shard, partition, n int) {
	t.Helper()
	dir := filepath.Join(dataDir, "partitions", fmt.Sprint(shard))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	marker := fmt.Sprintf("topic=%s\npartition=%d\nshard=%d\n", topic, partition, shard)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "PARTITION"), []byte(marker), 0o644))
	l, err := partlog.Open(filepath.Join(dir, "log"), partlog.Config{}, zerolog.Nop())
	require.NoError(t, err)
	for i := range n {
		_, err := l.Append(partlogtest.Values(1000, []byte(fmt.Sprint("v", i))), 1, -1, 1000)
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
}

func finalLog(partition int32, n int) map[int32][]logRecord {
	recs := make([]logRecord, n)
	for i := range recs {
		recs[i] = logRecord{partition: partition, offset: int64(i), value: fmt.Sprint("v", i)}
	}
	return map[int32][]logRecord{partition: recs}
}

// TestCheckReplicas: replicas are compared on their real logs, and
// replicas that agree on nothing (empty, missing) do not pass.
func TestCheckReplicas(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int // records per node; -1: no log directory, -2: no shard directory
		want  string
	}{
		{name: "equal", sizes: []int{5, 5, 5}},
		{name: "one behind", sizes: []int{5, 5, 3}, want: "node 3 holds [0,3); the final read ended at 5"},
		{name: "all empty", sizes: []int{0, 0, 0}, want: "node 1 holds [0,0); the final read ended at 5"},
		{name: "log missing", sizes: []int{5, 5, -1}, want: "partition 0: 2 readable replicas on disk, want 3"},
		{name: "shard missing", sizes: []int{5, 5, -2}, want: "partition 0: 2 readable replicas on disk, want 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{}
			for i, n := range tc.sizes {
				nd := &node{id: i + 1, dataDir: t.TempDir()}
				c.nodes = append(c.nodes, nd)
				require.NoError(t, os.MkdirAll(filepath.Join(nd.dataDir, "partitions"), 0o755))
				switch n {
				case -2:
				case -1:
					writeReplica(t, nd.dataDir, 7, 0, 0)
					require.NoError(t, os.RemoveAll(filepath.Join(nd.dataDir, "partitions", "7", "log")))
				default:
					writeReplica(t, nd.dataDir, 7, 0, n)
				}
			}
			digests, err := replicaDigests(c)
			require.NoError(t, err)
			a := check(newHistory(), finalLog(0, 5), digests, len(c.nodes))
			got := strings.Join(a.Replicas, "\n")
			if tc.want == "" {
				require.Empty(t, got)
				require.Len(t, digests["7"], 3)
				require.Equal(t, int64(5), digests["7"][0].end)
				return
			}
			require.Contains(t, got, tc.want)
		})
	}
}

// TestCheckFinalReadEmpty: acknowledged records the final read did not
// return are lost, never silently passed.
func TestCheckFinalReadEmpty(t *testing.T) {
	h := newHistory()
	h.sent["p0-000000001"] = true
	h.acks = append(h.acks, ack{value: "p0-000000001", partition: 2, offset: 0, at: time.Now()})
	a := check(h, map[int32][]logRecord{}, nil, 3)
	require.Len(t, a.Lost, 1)
	require.Equal(t, 1, a.Count())
}
