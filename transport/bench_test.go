package transport

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkQUICRoundTrip sends 1 MiB requests over one QUIC stream, one at
// a time, each answered by a small acknowledgement: the latency-bound case.
func BenchmarkQUICRoundTrip(b *testing.B) {
	ts := startServer(b, "quic", "", newTestHandler(), nil)
	conn := newTestClient(b).dial(ts)
	req := AppendFrame(nil, append([]byte("ack:"), bytes.Repeat([]byte{'p'}, 1<<20-4)...))
	var resp []byte
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		var err error
		if resp, err = ReadFrame(conn, resp, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThroughput pipelines requests over one connection as Kafka
// clients do (up to 5 in flight): "produce" sends the payload and gets a
// small acknowledgement, "fetch" gets the payload in the response.
func BenchmarkThroughput(b *testing.B) {
	for _, kind := range transportKinds {
		for _, dir := range []string{"produce", "fetch"} {
			for _, size := range []int{1 << 10, 1 << 20} {
				b.Run(fmt.Sprintf("%s/%s/%dKiB", kind, dir, size>>10), func(b *testing.B) {
					benchThroughput(b, kind, dir, size)
				})
			}
		}
	}
}

func benchThroughput(b *testing.B, kind, dir string, size int) {
	ts := startServer(b, kind, "", newTestHandler(), nil)
	conn := newTestClient(b).dial(ts)
	var req []byte
	if dir == "produce" {
		req = AppendFrame(nil, append([]byte("ack:"), bytes.Repeat([]byte{'p'}, size-4)...))
	} else {
		req = AppendFrame(nil, fmt.Appendf(nil, "fetch:%d", size))
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	const inFlight = 5
	sem := make(chan struct{}, inFlight)
	writeErr := make(chan error, 1)
	go func() {
		for range b.N {
			sem <- struct{}{}
			if _, err := conn.Write(req); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	var resp []byte
	for range b.N {
		var err error
		if resp, err = ReadFrame(conn, resp, 0); err != nil {
			b.Fatal(err)
		}
		<-sem
	}
	if err := <-writeErr; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = conn.Close()
}
