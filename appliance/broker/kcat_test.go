package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// kcatPath finds kcat; `make test` installs it from Debian's packages.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("EDDY_SKIP_KCAT") != "" {
			t.Skip("kcat not installed and EDDY_SKIP_KCAT set")
		}
		t.Fatal("kcat not found: run `make deps` (or set EDDY_SKIP_KCAT=1 to skip)")
	}
	return p
}

// TestKcatProducesKgoConsumes has librdkafka (kcat, over TCP) write keyed
// records with a header in every codec, and kgo over QUIC read them back:
// all present, per partition gapless and in the order written per key.
func TestKcatProducesKgoConsumes(t *testing.T) {
	kcat := kcatPath(t)
	n := nodetest.Start(t)
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := n.Client(t, sdk.QUIC)
			topic := "kcat-in-" + cc.name
			createTopic(ctx, t, c, topic, 3)
			var in bytes.Buffer
			for i := range roundTripRecords {
				fmt.Fprintf(&in, "key-%d:%d\n", i%1000, i)
			}
			cmd := exec.CommandContext(ctx, kcat, "-b", n.Addrs().Kafka, "-P", "-t", topic, "-K", ":",
				"-z", cc.name, "-H", "origin=kcat", "-X", "linger.ms=5")
			cmd.Stdin = &in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce: %v\n%s", err, out)
			}
			lastSeq := map[string]int{}
			next := map[int32]int64{}
			seen := 0
			err := c.Consume(ctx, topic, func(r *kgo.Record) error {
				if r.Offset != next[r.Partition] {
					return fmt.Errorf("partition %d: offset %d, expected %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				seq, err := strconv.Atoi(string(r.Value))
				if err != nil || "key-"+strconv.Itoa(seq%1000) != string(r.Key) {
					return fmt.Errorf("%d/%d: key %q does not match value %q", r.Partition, r.Offset, r.Key, r.Value)
				}
				if last, ok := lastSeq[string(r.Key)]; ok && seq <= last {
					return fmt.Errorf("key %s: value %d after %d (reordered)", r.Key, seq, last)
				}
				lastSeq[string(r.Key)] = seq
				if len(r.Headers) != 1 || r.Headers[0].Key != "origin" || string(r.Headers[0].Value) != "kcat" {
					return fmt.Errorf("%d/%d: headers %v", r.Partition, r.Offset, r.Headers)
				}
				seen++
				return nil
			}, sdk.FromBeginning(), sdk.MaxRecords(roundTripRecords))
			if err != nil {
				t.Fatal(err)
			}
			if seen != roundTripRecords || len(lastSeq) != 1000 || len(next) != 3 {
				t.Fatalf("read %d records, %d keys, %d partitions", seen, len(lastSeq), len(next))
			}
		})
	}
}

// TestKgoProducesKcatConsumes has kgo over QUIC write, and kcat over TCP
// read every record back with its partition, offset, key, value,
// timestamp and headers.
func TestKgoProducesKcatConsumes(t *testing.T) {
	kcat := kcatPath(t)
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := n.Client(t, sdk.QUIC)
	const topic = "kcat-out"
	createTopic(ctx, t, c, topic, 3)
	acked := produceKeyed(ctx, t, c, topic, roundTripRecords, kgo.ProducerBatchCompression(kgo.ZstdCompression()))

	cmd := exec.CommandContext(ctx, kcat, "-b", n.Addrs().Kafka, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%p\t%o\t%k\t%s\t%T\t%h\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	got := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 6 {
			t.Fatalf("kcat line %q", sc.Text())
		}
		p, _ := strconv.Atoi(f[0])
		off, _ := strconv.ParseInt(f[1], 10, 64)
		ts, _ := strconv.ParseInt(f[4], 10, 64)
		exp, ok := acked[int32(p)][off]
		if !ok {
			t.Fatalf("kcat read %d/%d, never acknowledged", p, off)
		}
		if f[2] != exp.key || f[3] != exp.value || ts != exp.ts.UnixMilli() {
			t.Fatalf("%d/%d: kcat read %q=%q@%d, want %q=%q@%d", p, off, f[2], f[3], ts, exp.key, exp.value, exp.ts.UnixMilli())
		}
		if want := "seq=" + strconv.Itoa(exp.seq) + ",kind=test"; f[5] != want {
			t.Fatalf("%d/%d: headers %q, want %q", p, off, f[5], want)
		}
		got++
	}
	if got != roundTripRecords {
		t.Fatalf("kcat read %d records, want %d", got, roundTripRecords)
	}
}
