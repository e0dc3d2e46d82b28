package broker_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted
// when the test ends (after the node on it is closed: cleanups run last
// registered first). It skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a small tmpfs as the node's data disk needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestFullDisk runs a node on a 128 MiB tmpfs, fills the disk to just above
// the free-space reserve and produces until the node refuses with
// KAFKA_STORAGE_ERROR. The node must stay up and serve fetches and
// metadata while full, accept produces again by itself once space is
// freed, and have lost none of the records it acknowledged.
func TestFullDisk(t *testing.T) {
	const (
		tmpfsSize = 128 << 20
		reserve   = 32 << 20
		headroom  = 12 << 20 // free space above the reserve when producing starts
		valueSize = 64 << 10
	)
	disk := mountTmpfs(t, tmpfsSize)
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.DataDir = filepath.Join(disk, "data")
		c.Limits.MinFreeDiskBytes = reserve
	}))
	createTopicWith(t, n, "full", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	filler := filepath.Join(disk, "filler")
	fill := freeBytes(t, disk) - reserve - headroom
	if err := os.WriteFile(filler, make([]byte, fill), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("filler of %d MiB leaves %d MiB free, reserve %d MiB", fill>>20, freeBytes(t, disk)>>20, reserve>>20)

	c := n.Client(t, sdk.QUIC)
	cl, err := c.NewKgo(kgo.DefaultProduceTopic("full"), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked [][]byte
	produce := func() error {
		v := make([]byte, valueSize) // random: no codec shrinks it
		rand.Read(v)
		err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr()
		if err == nil {
			acked = append(acked, v)
		}
		return err
	}
	start := time.Now()
	for err = produce(); err == nil; err = produce() {
		if len(acked) > 1000 {
			t.Fatalf("%d records of %d KiB acknowledged on a full disk", len(acked), valueSize>>10)
		}
	}
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("after %d records: %v, want KAFKA_STORAGE_ERROR", len(acked), err)
	}
	if len(acked) < 5 {
		t.Fatalf("refused after %d records: the headroom should take several", len(acked))
	}
	t.Logf("KAFKA_STORAGE_ERROR after %d acknowledged records (%d MiB) in %s; %d MiB free",
		len(acked), len(acked)*valueSize>>20, time.Since(start).Round(time.Millisecond), freeBytes(t, disk)>>20)

	// The error says what is wrong (raw request: kgo keeps only the code).
	r := dialRaw(t, n.Addrs().Kafka)
	p := r.roundTrip(produceRequest(9, "full", 0, makeBatch([]byte("x")))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.KafkaStorageError.Code || p.ErrorMessage == nil ||
		!strings.Contains(*p.ErrorMessage, "data disk has") || !strings.Contains(*p.ErrorMessage, "limits.min_free_disk_bytes") {
		t.Fatalf("raw produce on a full disk: error %d %v", p.ErrorCode, p.ErrorMessage)
	}
	t.Logf("message: %s", *p.ErrorMessage)

	// A producer with default settings retries KAFKA_STORAGE_ERROR: its
	// record waits while the disk is full and is written once it is not.
	patient, err := c.NewKgo(kgo.DefaultProduceTopic("full"))
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	patientValue := []byte("waited for space")
	patientDone := make(chan error, 1)
	go func() { patientDone <- patient.ProduceSync(ctx, &kgo.Record{Value: patientValue}).FirstErr() }()

	// Full, the node still answers metadata and fetches.
	if _, err := c.Admin().ListTopics(ctx, "full"); err != nil {
		t.Fatalf("metadata on a full disk: %v", err)
	}
	if got := readAll(ctx, t, c, len(acked)); !equalValues(got, acked) {
		t.Fatalf("fetch on a full disk: read %d records, want the %d acknowledged", len(got), len(acked))
	}
	metrics := scrape(t, n)
	if !strings.Contains(metrics, "eddy_data_disk_low 1\n") || limitsExceeded(t, n, "min_free_disk_bytes") < 1 {
		t.Fatalf("/metrics does not report the full disk:\n%s", grepLines(metrics, "data_disk", "limits_exceeded"))
	}
	select {
	case err := <-patientDone:
		t.Fatalf("a produce completed on a full disk: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	// Space returns: produces succeed again without any intervention.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for err = produce(); err != nil; err = produce() {
		if !errors.Is(err, kerr.KafkaStorageError) || time.Since(freed) > 10*time.Second {
			t.Fatalf("produce after space was freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("produces accepted %s after space was freed", time.Since(freed).Round(time.Millisecond))
	if err := <-patientDone; err != nil {
		t.Fatalf("the waiting producer: %v", err)
	}
	for range 3 {
		if err := produce(); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing acknowledged was lost, nothing refused was written (the
	// waiting producer's record sits among the others).
	got := readAll(ctx, t, c, len(acked)+1)
	var withoutPatient [][]byte
	for _, v := range got {
		if string(v) != string(patientValue) {
			withoutPatient = append(withoutPatient, v)
		}
	}
	if len(got) != len(acked)+1 || !equalValues(withoutPatient, acked) {
		t.Fatalf("read back %d records, want the %d acknowledged plus the waiting one, in order", len(got), len(acked))
	}
	if !strings.Contains(scrape(t, n), "eddy_data_disk_low 0\n") {
		t.Fatal("eddy_data_disk_low is not back to 0")
	}
}

// readAll reads the first want records of full/0.
func readAll(ctx context.Context, t *testing.T, c *sdk.Client, want int) [][]byte {
	t.Helper()
	var got [][]byte
	err := c.Consume(ctx, "full", func(r *kgo.Record) error {
		got = append(got, r.Value)
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(want))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func equalValues(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

func scrape(t *testing.T, n *nodetest.Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
