package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// limitCounter records ServerConfig.OnLimit calls.
type limitCounter struct {
	mu   sync.Mutex
	hits map[string]int
}

func (l *limitCounter) hit(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hits == nil {
		l.hits = make(map[string]int)
	}
	l.hits[name]++
}

func (l *limitCounter) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits[name]
}

// stillServes proves the listener works for a fresh client.
func stillServes(t *testing.T, ts *testServer) {
	t.Helper()
	conn := newTestClient(t).dial(ts)
	send(t, conn, "echo:alive")
	require.Equal(t, "alive", recv(t, conn))
}

func TestPreAuthFrameLimit(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		var lc limitCounter
		h := newTestHandler()
		ts := startServer(t, kind, "", h, func(c *ServerConfig) {
			c.OnConnect = nil // nobody authenticates at connect
			c.MaxPreAuthFrameBytes = 1000
			c.MaxFrameBytes = 1 << 20
			c.OnLimit = lc.hit
		})
		big := "echo:" + strings.Repeat("b", 2000)

		// Small requests are fine before authentication.
		conn := newTestClient(t).dial(ts)
		send(t, conn, "echo:hello")
		require.Equal(t, "hello", recv(t, conn))
		// A large one closes the connection unanswered; it is not even
		// handed to ServeOversized.
		send(t, conn, big)
		expectClosed(t, conn)
		require.Equal(t, int64(1), h.served.Load())
		require.Equal(t, 1, lc.count(LimitPreAuthFrame))

		// After authenticating, the listener's normal limit applies.
		conn = newTestClient(t).dial(ts)
		send(t, conn, "auth:User:alice", big)
		require.Equal(t, "authenticated", recv(t, conn))
		require.Equal(t, big[len("echo:"):], recv(t, conn))
		require.Equal(t, 1, lc.count(LimitPreAuthFrame))
	})
}

func TestSlowlorisFrameTimeout(t *testing.T) {
	const frameTimeout = 300 * time.Millisecond
	forEachKind(t, func(t *testing.T, kind string) {
		var lc limitCounter
		h := newTestHandler()
		ts := startServer(t, kind, "", h, func(c *ServerConfig) {
			c.FrameTimeout = frameTimeout
			c.MinTransferRate = 1 << 30 // the size allowance is negligible here
			c.OnLimit = lc.hit
		})

		t.Run("stalls after the header", func(t *testing.T) {
			conn := newTestClient(t).dial(ts)
			_, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, 100), "echo:"...))
			require.NoError(t, err)
			start := time.Now()
			expectClosed(t, conn)
			require.Less(t, time.Since(start), 10*frameTimeout)
		})
		t.Run("trickles", func(t *testing.T) {
			conn := newTestClient(t).dial(ts)
			frame := AppendFrame(nil, []byte("echo:"+strings.Repeat("t", 200)))
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				expectClosed(t, conn)
			}()
			// A byte every 50 ms would take 10 s; the frame timeout ends it.
		trickle:
			for _, b := range frame {
				if _, err := conn.Write([]byte{b}); err != nil {
					break
				}
				select {
				case <-closed:
					break trickle
				case <-time.After(50 * time.Millisecond):
				}
			}
			<-closed
			require.Less(t, time.Since(start), 10*frameTimeout)
		})
		require.Equal(t, 2, lc.count(LimitFrameTimeout))
		require.Zero(t, h.served.Load(), "no partial frame may be served")

		// A quiet connection between frames is not a slow frame.
		conn := newTestClient(t).dial(ts)
		time.Sleep(2 * frameTimeout)
		send(t, conn, "echo:patient")
		require.Equal(t, "patient", recv(t, conn))
		stillServes(t, ts)
	})
}

func TestWriteTimeoutDropsClientThatStopsReading(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		var lc limitCounter
		h := newTestHandler()
		ts := startServer(t, kind, "", h, func(c *ServerConfig) {
			c.WriteTimeout = 300 * time.Millisecond
			c.MinTransferRate = 1 << 30
			c.OnLimit = lc.hit
		})
		conn := newTestClient(t).dial(ts)
		// 128 MiB of responses that are never read: more than the socket
		// buffers or the QUIC flow-control windows hold.
		var reqs []string
		for range 32 {
			reqs = append(reqs, fmt.Sprintf("fetch:%d", len(fetchPayload)))
		}
		send(t, conn, reqs...)
		eventually(t, func() bool { return lc.count(LimitWriteTimeout) == 1 }, "write timeout not hit")
		// Every Responder is still called once, the rest cancelled.
		eventually(t, func() bool { return h.responded.Load() == h.served.Load() },
			"responded %d of %d", h.responded.Load(), h.served.Load())
		// Reading now drains what was buffered, then the connection ends.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection still open: %v", err)
		stillServes(t, ts)
	})
}

func TestTLSHandshakeTimeout(t *testing.T) {
	checkGoroutines(t)
	var lc limitCounter
	ts := startServer(t, "tcp+tls", "", newTestHandler(), func(c *ServerConfig) {
		c.HandshakeTimeout = 200 * time.Millisecond
		c.OnLimit = lc.hit
	})
	raw, err := net.Dial("tcp", ts.addr())
	require.NoError(t, err)
	defer raw.Close()
	// A client that connects and never says hello.
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = raw.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	// The handshake's context closes the socket before the server's
	// goroutine sees the error and counts it.
	eventually(t, func() bool { return lc.count(LimitHandshakeTimeout) == 1 }, "handshake timeout not counted")
	stillServes(t, ts)
}

// mutePacketConn passes the first packet a QUIC client sends and drops
// every later one: the server sees a handshake start and then silence.
type mutePacketConn struct {
	net.PacketConn
	sent atomic.Int32
}

func (m *mutePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if m.sent.Add(1) > 1 {
		return len(p), nil
	}
	return m.PacketConn.WriteTo(p, addr)
}

func TestQUICHandshakeTimeout(t *testing.T) {
	checkGoroutines(t)
	var lc limitCounter
	ts := startServer(t, "quic", "", newTestHandler(), func(c *ServerConfig) {
		c.HandshakeTimeout = 200 * time.Millisecond
		c.OnLimit = lc.hit
	})
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: &mutePacketConn{PacketConn: udp}}
	defer udp.Close()
	defer tr.Close()
	raddr, err := net.ResolveUDPAddr("udp", ts.addr())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tlsConf := ClientTLSConfig(testNodeTLS(t).CAPool, "")
	tlsConf.NextProtos = []string{ALPN}
	_, err = tr.Dial(ctx, raddr, tlsConf, &quic.Config{HandshakeIdleTimeout: time.Second})
	require.Error(t, err, "the handshake cannot complete")
	eventually(t, func() bool { return lc.count(LimitHandshakeTimeout) == 1 }, "QUIC handshake timeout not counted")
	stillServes(t, ts)
}

func TestConnectionsPerIP(t *testing.T) {
	for _, kind := range transportKinds {
		t.Run(kind, func(t *testing.T) {
			checkGoroutines(t)
			var lc limitCounter
			ts := startServer(t, kind, "", newTestHandler(), func(c *ServerConfig) {
				c.MaxConnsPerIP = 2
				c.OnLimit = lc.hit
			})
			// Separate clients: QUIC clients of one dialer share a
			// connection, and the limit is on connections.
			c1, c2 := newTestClient(t), newTestClient(t)
			a, b := c1.dial(ts), c2.dial(ts)
			for _, conn := range []net.Conn{a, b} {
				send(t, conn, "echo:in")
				require.Equal(t, "in", recv(t, conn))
			}
			c3 := newTestClient(t)
			refused := func() bool {
				if kind == "quic" {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					conn, err := c3.dialer.DialContext(ctx, "tcp", ts.addr())
					if err != nil {
						return true
					}
					conn.Close()
					return false
				}
				var conn net.Conn
				var err error
				if kind == "tcp+tls" {
					// The server closes the socket before the handshake.
					d := tls.Dialer{Config: &tls.Config{RootCAs: testNodeTLS(t).CAPool, ServerName: "127.0.0.1"}}
					conn, err = d.DialContext(context.Background(), "tcp", ts.addr())
				} else {
					conn, err = net.Dial("tcp", ts.addr())
				}
				if err != nil {
					return true
				}
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Write(AppendFrame(nil, []byte("echo:x"))); err != nil {
					return true
				}
				_, err = ReadFrame(conn, nil, 0)
				return err != nil
			}
			require.True(t, refused(), "a third connection from the address was served")
			require.GreaterOrEqual(t, lc.count(LimitConnsPerIP), 1)
			// The first two are unaffected.
			send(t, a, "echo:still")
			require.Equal(t, "still", recv(t, a))
			// A slot freed is a slot available again.
			require.NoError(t, a.Close())
			if kind == "quic" {
				require.NoError(t, c1.dialer.Close())
			}
			eventually(t, func() bool { return !refused() }, "the freed slot was not reused")
		})
	}
}

func TestQUICStreamsPerConnection(t *testing.T) {
	checkGoroutines(t)
	h := newTestHandler()
	ts := startServer(t, "quic", "", h, func(c *ServerConfig) { c.MaxStreamsPerConn = 3 })
	client := newTestClient(t)
	var open []net.Conn
	for i := range 3 {
		conn := client.dial(ts)
		send(t, conn, fmt.Sprintf("block:%d", i))
		open = append(open, conn)
	}
	for range 3 {
		<-h.blocked
	}
	// A fourth stream must wait for one of the three.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := client.dialer.DialContext(ctx, "tcp", ts.addr())
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(h.release)
	for i, conn := range open {
		require.Equal(t, fmt.Sprint(i), recv(t, conn))
		require.NoError(t, conn.Close())
	}
	conn := client.dial(ts)
	send(t, conn, "echo:fourth")
	require.Equal(t, "fourth", recv(t, conn))
	require.Equal(t, int64(1), ts.quicAccepted(), "all streams shared one connection")
}
