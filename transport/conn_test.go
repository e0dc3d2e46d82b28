package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// forEachKind runs a connection test over TCP, TCP with TLS, and a QUIC
// stream: serving must behave the same on each.
func forEachKind(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range transportKinds {
		t.Run(kind, func(t *testing.T) {
			checkGoroutines(t)
			test(t, kind)
		})
	}
}

func TestPipelinedResponsesComeBackInOrder(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		h.record = true
		ts := startServer(t, kind, "", h, nil)
		conn := newTestClient(t).dial(ts)

		// Earlier requests take longer: only ordering by the connection
		// can bring the responses back in request order.
		const n = 10
		var reqs []string
		for i := range n {
			reqs = append(reqs, fmt.Sprintf("sleep:%d:r%d", (n-i)*5, i))
		}
		send(t, conn, reqs...)
		for i := range n {
			require.Equal(t, fmt.Sprintf("r%d", i), recv(t, conn))
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Equal(t, reqs, h.order, "ServeFrame must see requests in arrival order")
	})
}

func TestNoResponse(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		ts := startServer(t, kind, "", newTestHandler(), nil)
		conn := newTestClient(t).dial(ts)
		send(t, conn, "none", "echo:after", "none", "echo:last")
		require.Equal(t, "after", recv(t, conn))
		require.Equal(t, "last", recv(t, conn))
	})
}

func TestConnInfo(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		ts := startServer(t, kind, "", newTestHandler(), nil)
		conn := newTestClient(t).dial(ts)
		send(t, conn, "info")
		fields := strings.Fields(recv(t, conn))
		require.Len(t, fields, 4)
		require.Equal(t, strings.TrimSuffix(kind, "+tls"), fields[0])
		require.Equal(t, "test-"+kind, fields[1])
		require.Equal(t, fmt.Sprint(kind != "tcp"), fields[3])
		// The QUIC dialer's socket is bound to the unspecified address, so
		// only the port identifies it.
		_, gotPort, err := net.SplitHostPort(fields[2])
		require.NoError(t, err)
		_, wantPort, err := net.SplitHostPort(conn.LocalAddr().String())
		require.NoError(t, err)
		require.Equal(t, wantPort, gotPort)
	})
}

func TestOversizedFrameKeepsConnectionUsable(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		ts := startServer(t, kind, "", h, func(c *ServerConfig) { c.MaxFrameBytes = 1000 })
		conn := newTestClient(t).dial(ts)

		big := make([]byte, 300<<10)
		for i := range big {
			big[i] = byte(i * 7)
		}
		small := bytes.Repeat([]byte{'x'}, 1500)
		var buf []byte
		buf = AppendFrame(buf, big)
		buf = AppendFrame(buf, []byte("echo:next"))
		buf = AppendFrame(buf, small)
		buf = AppendFrame(buf, []byte("echo:last"))
		_, err := conn.Write(buf)
		require.NoError(t, err)

		require.Equal(t, fmt.Sprintf("oversized:%d:%d", len(big), OversizedHeadBytes), recv(t, conn))
		require.Equal(t, "next", recv(t, conn))
		require.Equal(t, fmt.Sprintf("oversized:%d:%d", len(small), len(small)), recv(t, conn))
		require.Equal(t, "last", recv(t, conn))

		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.oversized, 2)
		require.Equal(t, big[:OversizedHeadBytes], h.oversized[0].head)
		require.Equal(t, small, h.oversized[1].head)
	})
}

func TestMalformedInputClosesConnection(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"truncated body", append(binary.BigEndian.AppendUint32(nil, 100), "echo:short"...)},
		{"truncated length", []byte{0, 0}},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xfe, 'e', 'c', 'h', 'o'}},
		{"truncated oversized head", append(binary.BigEndian.AppendUint32(nil, 1<<20), "echo:"...)},
	}
	forEachKind(t, func(t *testing.T, kind string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newTestHandler()
				ts := startServer(t, kind, "", h, func(c *ServerConfig) { c.MaxFrameBytes = 1000 })
				conn := newTestClient(t).dial(ts)
				send(t, conn, "echo:before")
				require.Equal(t, "before", recv(t, conn))
				_, err := conn.Write(tc.bytes)
				require.NoError(t, err)
				if !strings.Contains(tc.name, "negative") {
					closeWrite(t, conn) // the frame ends early
				}
				expectClosed(t, conn)
				require.Equal(t, int64(1), h.served.Load(), "no request may be served from malformed input")
			})
		}
	})
}

func TestBackpressureLimitsRequestsInFlight(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		ts := startServer(t, kind, "", h, func(c *ServerConfig) { c.MaxInFlight = 2 })
		conn := newTestClient(t).dial(ts)

		send(t, conn, "block:a", "block:b", "block:c", "block:d", "block:e")
		eventually(t, func() bool { return h.served.Load() == 2 }, "served %d, want 2", h.served.Load())
		// The reader must stay blocked, not merely be slow.
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, int64(2), h.served.Load(), "reader went past MaxInFlight")

		close(h.release)
		for _, want := range []string{"a", "b", "c", "d", "e"} {
			require.Equal(t, want, recv(t, conn))
		}
		require.Equal(t, int64(5), h.served.Load())
	})
}

func TestResponderErrorClosesConnection(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		ts := startServer(t, kind, "", h, nil)
		conn := newTestClient(t).dial(ts)
		send(t, conn, "echo:first", "fail", "sleep:1000:x", "block:y")
		require.Equal(t, "first", recv(t, conn))
		expectClosed(t, conn)
		// Every Responder is still called once, the later ones cancelled.
		eventually(t, func() bool { return h.responded.Load() == h.served.Load() },
			"responded %d of %d", h.responded.Load(), h.served.Load())
	})
}

func TestPeerCloseAwaitsPendingResponses(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		ts := startServer(t, kind, "", h, nil)
		conn := newTestClient(t).dial(ts)
		send(t, conn, "sleep:100:slow", "echo:fast")
		closeWrite(t, conn)
		require.Equal(t, "slow", recv(t, conn))
		require.Equal(t, "fast", recv(t, conn))
		expectClosed(t, conn)
		require.Zero(t, h.cancelled.Load())
	})
}

func TestIdleTimeout(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		const idle = 300 * time.Millisecond
		ts := startServer(t, kind, "", newTestHandler(), func(c *ServerConfig) { c.IdleTimeout = idle })
		conn := newTestClient(t).dial(ts)

		// A pending response keeps the connection busy past the timeout.
		send(t, conn, fmt.Sprintf("sleep:%d:late", 2*idle.Milliseconds()+100))
		require.Equal(t, "late", recv(t, conn))
		// Requests in between keep resetting the timer.
		for range 2 {
			time.Sleep(idle / 3)
			send(t, conn, "echo:ping")
			require.Equal(t, "ping", recv(t, conn))
		}
		start := time.Now()
		expectClosed(t, conn)
		if d := time.Since(start); d > 10*idle {
			t.Fatalf("idle connection closed after %s", d)
		}
	})
}

func TestServerCloseCancelsPendingResponders(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		h := newTestHandler()
		ts := startServer(t, kind, "", h, nil)
		conn := newTestClient(t).dial(ts)
		send(t, conn, "block:a", "block:b")
		require.Equal(t, "a", <-h.blocked)
		eventually(t, func() bool { return h.served.Load() == 2 }, "second request not read")

		ts.stop(t)
		require.Equal(t, int64(2), h.responded.Load())
		require.Equal(t, int64(2), h.cancelled.Load())
		expectClosed(t, conn)
	})
}

func TestFrameBufferIsReused(t *testing.T) {
	// ServeFrame may only use frame until it returns because the next
	// request is read into the same memory.
	var seen [][]byte
	h := &recordingHandler{fn: func(frame []byte) { seen = append(seen, frame) }}
	ts := startServer(t, "tcp", "", h, nil)
	conn := newTestClient(t).dial(ts)
	send(t, conn, "the first and longest request", "second", "third request")
	for range 3 {
		recv(t, conn)
	}
	require.Len(t, seen, 3)
	require.Same(t, &seen[0][:1][0], &seen[1][:1][0], "second frame was read into a new buffer")
	require.Same(t, &seen[0][:1][0], &seen[2][:1][0], "third frame was read into a new buffer")
}

type recordingHandler struct{ fn func([]byte) }

func (h *recordingHandler) ServeFrame(_ context.Context, _ *ConnInfo, frame []byte) Responder {
	h.fn(frame)
	return func(context.Context) ([]byte, error) { return []byte("ok"), nil }
}

func (h *recordingHandler) ServeOversized(context.Context, *ConnInfo, []byte, int) Responder {
	return nil
}

func TestServerConfigValidate(t *testing.T) {
	h := newTestHandler()
	cases := []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, "Handler"},
		{ServerConfig{Handler: h, MaxFrameBytes: -1}, "MaxFrameBytes"},
		{ServerConfig{Handler: h, MaxInFlight: -1}, "MaxInFlight"},
		{ServerConfig{Handler: h, IdleTimeout: -time.Second}, "IdleTimeout"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		require.ErrorContains(t, err, tc.want)
		_, err = ListenTCP("127.0.0.1:0", nil, tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, ServerConfig{Handler: h}.Validate())
}

func TestServeAfterClose(t *testing.T) {
	checkGoroutines(t)
	srv, err := ListenTCP("127.0.0.1:0", nil, ServerConfig{Handler: newTestHandler()})
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	require.ErrorIs(t, srv.Serve(context.Background()), ErrServerClosed)
	require.NoError(t, srv.Close())
}

func TestServeStopsWithContext(t *testing.T) {
	for _, kind := range []string{"tcp", "quic"} {
		t.Run(kind, func(t *testing.T) {
			checkGoroutines(t)
			h := newTestHandler()
			ctx, cancel := context.WithCancel(context.Background())
			var srv *Server
			var err error
			cfg := ServerConfig{Handler: h, Logger: testLogger(t)}
			if kind == "tcp" {
				srv, err = ListenTCP("127.0.0.1:0", nil, cfg)
			} else {
				srv, err = ListenQUIC("127.0.0.1:0", testNodeTLS(t).ServerConfig(ALPN), cfg)
			}
			require.NoError(t, err)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ctx) }()

			conn := newTestClient(t).dial(&testServer{kind: kind, srv: srv})
			send(t, conn, "block:x")
			<-h.blocked
			cancel()
			require.NoError(t, <-errc)
			require.Equal(t, int64(1), h.cancelled.Load())
			require.NoError(t, srv.Close())
		})
	}
}
