package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// chaosProxy forwards TCP connections to target and, with probability
// cut, closes a connection right after forwarding a client's bytes, so
// the request may be applied but its response is lost: the client must
// resend.
type chaosProxy struct {
	ln     net.Listener
	target string
	cut    float64
	calm   atomic.Bool // set outside the produce phase, so setup and verification run undisturbed
	cuts   atomic.Int64
	wg     sync.WaitGroup
}

func newChaosProxy(t *testing.T, target string, cut float64) *chaosProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{ln: ln, target: target, cut: cut}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *chaosProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *chaosProxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(c, up) // responses
	}()
	buf := make([]byte, 64<<10)
	for writes := 0; ; writes++ {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := up.Write(buf[:n]); werr != nil {
				break
			}
			// The first request of a connection (ApiVersions) always gets
			// its answer: kgo takes a connection that dies at once for a
			// misconfiguration (TLS, SASL) and gives up on it.
			// InitProducerId is spared too: kgo fails every buffered record
			// when getting a producer id fails a few times in a row, which
			// is not what this test is about (lost produce responses).
			initProducerID := n >= 6 && binary.BigEndian.Uint16(buf[4:6]) == 22
			if writes > 0 && !initProducerID && !p.calm.Load() && rand.Float64() < p.cut {
				// The request reached the broker; drop the connection before
				// its response can come back.
				time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
				p.cuts.Add(1)
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	up.Close()
	<-done
}

// TestIdempotentRetriesNeverDuplicate drives kgo's default (idempotent)
// producer through a proxy that cuts connections after requests reached
// the broker, so acknowledgements are lost and batches are resent. The
// topic must end up with every record exactly once, offsets contiguous.
func TestIdempotentRetriesNeverDuplicate(t *testing.T) {
	proxyAddr := make(chan string, 1)
	var proxy *chaosProxy
	n := nodetest.Start(t)
	proxy = newChaosProxy(t, n.Addrs().Kafka, 0.1)
	proxy.calm.Store(true)
	proxyAddr <- proxy.ln.Addr().String()
	// Clients learn broker addresses from Metadata: advertise the proxy.
	n.Config.Advertise.Kafka = <-proxyAddr
	n.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := n.Client(t, sdk.TCP)
	createTopic(ctx, t, admin, "once", 3)

	// Small batches: many requests for the proxy to cut.
	proxy.calm.Store(false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Config.Advertise.Kafka), kgo.DefaultProduceTopic("once"),
		kgo.ProducerBatchMaxBytes(2048), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 20000
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range total {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("v%d-%0100d", i, i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		})
		if i%200 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d records failed: %v", failed.Load(), firstErr.Load())
	}
	if proxy.cuts.Load() < 10 || n.Host().DuplicateBatches() == 0 {
		t.Fatalf("the proxy cut %d connections and the broker saw %d resent batches; the test did not exercise deduplication",
			proxy.cuts.Load(), n.Host().DuplicateBatches())
	}
	proxy.calm.Store(true)
	seen := map[string]bool{}
	next := map[int32]int64{}
	err = admin.Consume(ctx, "once", func(r *kgo.Record) error {
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
		if seen[string(r.Value)] {
			return fmt.Errorf("%s appears twice (at %d/%d)", r.Value, r.Partition, r.Offset)
		}
		seen[string(r.Value)] = true
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(total))
	if err != nil {
		t.Fatal(err)
	}
	if got := endOffset(t, n, "once", 0) + endOffset(t, n, "once", 1) + endOffset(t, n, "once", 2); got != total {
		t.Fatalf("the topic holds %d records, %d were produced", got, total)
	}
	t.Logf("%d records exactly once across %d cut connections; %d resent batches recognised", total, proxy.cuts.Load(), n.Host().DuplicateBatches())
}
