package broker_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

func segmentFiles(t *testing.T, n *nodetest.Node, topic string) []string {
	t.Helper()
	p := n.Host().Meta().Topics[topic].Partitions[0]
	files, err := filepath.Glob(filepath.Join(n.Config.DataDir, "partitions", strconv.FormatUint(p.ShardID, 10), "log", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRetentionBySize(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	c := n.Client(t, sdk.TCP)
	segment, retain := "16384", "40000"
	if _, err := c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": &segment, "retention.bytes": &retain}, "sized"); err != nil {
		t.Fatal(err)
	}
	for range 20 { // 20 × 10 KiB batches: over a dozen 16 KiB segments
		vals := make([][]byte, 10)
		for i := range vals {
			vals[i] = make([]byte, 1024)
			rand.Read(vals[i])
		}
		produceTo(t, c, "sized", 0, nil, vals...)
	}
	before := len(segmentFiles(t, n, "sized"))
	n.Host().EnforceRetention()
	starts, err := c.Admin().ListStartOffsets(ctx, "sized")
	if err != nil {
		t.Fatal(err)
	}
	start, _ := starts.Lookup("sized", 0)
	after := segmentFiles(t, n, "sized")
	if start.Offset == 0 || len(after) >= before {
		t.Fatalf("retention.bytes=40000 over %d segments: start offset %d, %d segments left", before, start.Offset, len(after))
	}
	var size int64
	for _, f := range after {
		fi, _ := os.Stat(f)
		size += fi.Size()
	}
	if size < 40000 || size > 40000+2*16384 {
		t.Fatalf("%d bytes kept, want about retention.bytes (40000) plus at most a segment", size)
	}
	if got := endOffset(t, n, "sized", 0); got != 200 {
		t.Fatalf("end offset %d, want 200: retention must not move the end", got)
	}
}

func TestRetentionByTime(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	c := n.Client(t, sdk.TCP)
	minute := "60000"
	if _, err := c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &minute}, "aged"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	produceTo(t, c, "aged", 0, []time.Time{old, old, old}, []byte("a"), []byte("b"), []byte("c"))
	n.Host().EnforceRetention()
	starts, _ := c.Admin().ListStartOffsets(ctx, "aged")
	if o, _ := starts.Lookup("aged", 0); o.Offset != 3 {
		t.Fatalf("records two hours old with retention.ms=60000: start offset %d, want 3", o.Offset)
	}
	// The partition keeps working after everything in it expired.
	produceTo(t, c, "aged", 0, nil, []byte("fresh"))
	if fr := fetchOnce(t, n, "aged", 0, 3, 1<<20); fr.ErrorCode != 0 || len(fr.RecordBatches) == 0 {
		t.Fatalf("fetch after expiry: error %d, %d bytes", fr.ErrorCode, len(fr.RecordBatches))
	}
	n.Host().EnforceRetention()
	if got := endOffset(t, n, "aged", 0); got != 4 {
		t.Fatalf("end offset %d, want 4", got)
	}
}
