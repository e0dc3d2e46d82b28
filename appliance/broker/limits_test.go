package broker_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// limitsExceeded reads eddy_limits_exceeded_total{limit=...} from the
// node's /metrics.
func limitsExceeded(t *testing.T, n *nodetest.Node, limit string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^eddy_limits_exceeded_total\{limit="` + regexp.QuoteMeta(limit) + `"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gzipBatch compresses the records of an uncompressed batch with gzip, as
// a producer would.
func gzipBatch(t *testing.T, batch []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(batch[partlogBatchHeader:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(batch[:partlogBatchHeader]), z.Bytes()...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint16(out[21:], 1) // attributes: gzip
	partlogtest.SetCRC(out)
	return out
}

const partlogBatchHeader = 61

// claimRecords rewrites a batch's record count (and lastOffsetDelta to
// match), keeping its CRC valid: a batch that lies about its size.
func claimRecords(batch []byte, count int32) []byte {
	b := bytes.Clone(batch)
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	partlogtest.SetCRC(b)
	return b
}

func values(n int) [][]byte {
	var vs [][]byte
	for i := range n {
		vs = append(vs, []byte(fmt.Sprintf("v%d", i)))
	}
	return vs
}

func TestRecordsPerBatchLimit(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Limits.MaxRecordsPerBatch = 10 }))
	createTopicWith(t, n, "counted", nil)
	r := dialRaw(t, n.Addrs().Kafka)
	produce := func(records []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		return r.roundTrip(produceRequest(9, "counted", 0, records)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	refused := func(name string, p kmsg.ProduceResponseTopicPartition, want string) {
		t.Helper()
		if p.ErrorCode != kerr.InvalidRecord.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, want) {
			t.Fatalf("%s: error %d %v, want INVALID_RECORD saying %q", name, p.ErrorCode, p.ErrorMessage, want)
		}
		t.Logf("%s: %s", name, *p.ErrorMessage)
	}

	refused("11 records", produce(makeBatch(values(11)...)), "limits.max_records_per_batch")
	if p := produce(makeBatch(values(10)...)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("10 records: error %d, base offset %d", p.ErrorCode, p.BaseOffset)
	}
	refused("two batches of 6", produce(append(makeBatch(values(6)...), makeBatch(values(6)...)...)), "together")
	// A compressed batch holding one record but claiming 2^31-1: the
	// bytes cannot contradict a compressed count until decompression, so
	// without the cap it would take two billion offsets.
	refused("compressed batch claiming 2^31-1 records", produce(claimRecords(gzipBatch(t, makeBatch([]byte("one"))), 1<<31-1)), "2147483647 records")
	// An uncompressed one is caught by its bytes, whatever the cap.
	p := produce(claimRecords(makeBatch([]byte("one")), 5))
	if p.ErrorCode != kerr.CorruptMessage.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "cannot fit") {
		t.Fatalf("uncompressed batch claiming 5 records in one's bytes: error %d %v, want CORRUPT_MESSAGE", p.ErrorCode, p.ErrorMessage)
	}

	if got := endOffset(t, n, "counted", 0); got != 10 {
		t.Fatalf("end offset %d, want 10 (only the batch within the limit)", got)
	}
	if got := limitsExceeded(t, n, "records_per_batch"); got != 3 {
		t.Fatalf("eddy_limits_exceeded_total{limit=records_per_batch} = %v, want 3", got)
	}
	apiVersionsWorks(t, r)
	stillServes(t, n)
}

// expectEOF waits for the node to close conn.
func expectEOF(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
	t.Logf("closed after %s (%v)", time.Since(start).Round(time.Millisecond), err)
}

func TestSlowAndSilentClients(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Limits.FrameTimeout = "300ms"
		c.Limits.IdleTimeout = "500ms"
	}))
	t.Run("slowloris", func(t *testing.T) {
		r := dialRaw(t, n.Addrs().Kafka)
		// A request header that promises 100 bytes and delivers 3.
		r.write([]byte{0, 0, 0, 100, 0, 18, 0})
		expectEOF(t, r.c, 10*time.Second)
		if got := limitsExceeded(t, n, "frame_timeout"); got != 1 {
			t.Fatalf("frame_timeout hits %v, want 1", got)
		}
	})
	t.Run("silent", func(t *testing.T) {
		r := dialRaw(t, n.Addrs().Kafka)
		apiVersionsWorks(t, r)
		expectEOF(t, r.c, 10*time.Second)
		if got := limitsExceeded(t, n, "idle_timeout"); got < 1 {
			t.Fatalf("idle_timeout hits %v, want at least 1", got)
		}
	})
	stillServes(t, n)
}

func TestConnectionsPerIPOnNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.Limits.MaxConnectionsPerIP = 3 }))
	var held []*rawConn
	for range 3 {
		r := dialRaw(t, n.Addrs().Kafka)
		apiVersionsWorks(t, r)
		held = append(held, r)
	}
	extra := dialRaw(t, n.Addrs().Kafka)
	extra.c.Write(extra.frame(kmsg.NewPtrApiVersionsRequest())) // may fail: the node closes at accept
	expectEOF(t, extra.c, 10*time.Second)
	if got := limitsExceeded(t, n, "connections_per_ip"); got < 1 {
		t.Fatalf("connections_per_ip hits %v, want at least 1", got)
	}
	// The connections within the limit are unaffected.
	for _, r := range held {
		apiVersionsWorks(t, r)
		r.c.Close()
	}
	stillServes(t, n)
}

func TestPreAuthFrameLimitOnNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Auth.Kafka = nodecfg.AuthSASL // loopback: SASL without TLS is allowed
	}))
	r := dialRaw(t, n.Addrs().Kafka)
	// Small requests before authentication are answered.
	apiVersionsWorks(t, r)
	// 600 KiB before authenticating closes the connection unread.
	r.write(r.frame(produceRequest(9, "anything", 0, makeBatch(bytes.Repeat([]byte("x"), 600<<10)))))
	expectEOF(t, r.c, 10*time.Second)
	if got := limitsExceeded(t, n, "pre_auth_frame_bytes"); got != 1 {
		t.Fatalf("pre_auth_frame_bytes hits %v, want 1", got)
	}
	stillServes(t, n) // over QUIC, which has no SASL here
}
