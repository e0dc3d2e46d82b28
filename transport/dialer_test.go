package transport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDialerSharesOneConnection(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	client := newTestClient(t)

	// Concurrent first dials share one handshake.
	const n = 20
	remotes := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := client.dialer.DialContext(ctx, "tcp", ts.addr())
			if err != nil {
				remotes <- err.Error()
				return
			}
			defer conn.Close()
			if _, err := conn.Write(AppendFrame(nil, []byte("info"))); err != nil {
				remotes <- err.Error()
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := ReadFrame(conn, nil, 0)
			if err != nil {
				remotes <- err.Error()
				return
			}
			remotes <- strings.Fields(string(got))[2]
		})
	}
	wg.Wait()
	close(remotes)
	var first string
	for r := range remotes {
		if first == "" {
			first = r
		}
		require.Equal(t, first, r, "server saw streams from different client addresses")
	}
	require.Equal(t, int64(1), ts.quicAccepted())
}

func TestDialerReconnectsAfterServerRestart(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	addr := ts.addr()
	client := newTestClient(t)
	conn := client.dial(ts)
	send(t, conn, "echo:one")
	require.Equal(t, "one", recv(t, conn))

	ts.stop(t)
	// The server told the client (CONNECTION_CLOSE); a dial racing with
	// that packet could still pick the old connection, as it would in
	// production, where the client library retries.
	expectClosed(t, conn)
	ts2 := startServer(t, "quic", addr, newTestHandler(), nil)
	conn2 := client.dial(ts2)
	send(t, conn2, "echo:two")
	require.Equal(t, "two", recv(t, conn2))
	require.Equal(t, int64(1), ts2.quicAccepted())
}

func TestDialerRecoversFromCrashedServer(t *testing.T) {
	checkGoroutines(t)
	// The broker vanishes without CONNECTION_CLOSE (a crash) and comes back
	// with the same key: its stateless reset ends the client's stale
	// connection at the first packet, long before the idle timeout.
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	addr := ts.addr()
	client := newTestClient(t, DialerMaxIdleTimeout(30*time.Second))
	conn := client.dial(ts)
	send(t, conn, "echo:one")
	require.Equal(t, "one", recv(t, conn))

	acc := ts.srv.acc.(*quicAcceptor)
	// Simulate the crash: the socket disappears first, so that nothing
	// can be sent while the server notices.
	_ = acc.udp.Close()
	_ = acc.tr.Close()
	// Serve reports the listener that died under it.
	require.ErrorContains(t, <-ts.errc, "transport closed")
	ts.errc <- nil

	ts2 := startServer(t, "quic", addr, newTestHandler(), nil)
	start := time.Now()
	send(t, conn, "echo:lost")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := ReadFrame(conn, nil, 0)
	require.Error(t, err)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stale connection noticed after %s: %v", d, err)
	}
	conn2 := client.dial(ts2)
	send(t, conn2, "echo:two")
	require.Equal(t, "two", recv(t, conn2))
}

func TestDialerRetriesFailedHandshake(t *testing.T) {
	checkGoroutines(t)
	// Find a free UDP port, then dial it while nobody listens.
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	addr := ts.addr()
	ts.stop(t)

	client := newTestClient(t, DialerHandshakeTimeout(500*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.dialer.DialContext(ctx, "tcp", addr)
	require.Error(t, err)

	// The failure is not cached. (Retry only because a loaded machine may
	// need more than the short handshake timeout; a cached failure would
	// fail every attempt.)
	startServer(t, "quic", addr, newTestHandler(), nil)
	var conn net.Conn
	for conn == nil && ctx.Err() == nil {
		conn, err = client.dialer.DialContext(ctx, "tcp", addr)
	}
	require.NoError(t, err)
	defer conn.Close()
	send(t, conn, "echo:up")
	require.Equal(t, "up", recv(t, conn))
}

func TestDialerCallerCancelDoesNotFailOthers(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	client := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client.dialer.DialContext(ctx, "tcp", ts.addr())
	require.ErrorIs(t, err, context.Canceled)
	conn := client.dial(ts)
	send(t, conn, "echo:fine")
	require.Equal(t, "fine", recv(t, conn))
}

func TestDialerClose(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	d := NewQUICDialer(ClientTLSConfig(testNodeTLS(t).CAPool, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", ts.addr())
	require.NoError(t, err)
	send(t, conn, "echo:x")
	require.Equal(t, "x", recv(t, conn))

	require.NoError(t, d.Close())
	require.NoError(t, d.Close())
	_, err = d.DialContext(ctx, "tcp", ts.addr())
	require.ErrorIs(t, err, ErrDialerClosed)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = ReadFrame(conn, nil, 0)
	require.Error(t, err)
	require.NoError(t, conn.Close())
}

func TestDialerVerifiesServer(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	other, err := EnsureNodeTLS(t.TempDir(), nil)
	require.NoError(t, err)

	cases := []struct {
		name       string
		pool       *x509.CertPool
		serverName string
		wantErr    string
	}{
		{"node CA", testNodeTLS(t).CAPool, "", ""},
		{"node CA, name in certificate", testNodeTLS(t).CAPool, "localhost", ""},
		{"other CA", other.CAPool, "", "certificate signed by unknown authority"},
		{"name not in certificate", testNodeTLS(t).CAPool, "broker.example", "certificate is valid for"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewQUICDialer(ClientTLSConfig(tc.pool, tc.serverName))
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := d.DialContext(ctx, "tcp", ts.addr())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			defer conn.Close()
			send(t, conn, "echo:trusted")
			require.Equal(t, "trusted", recv(t, conn))
		})
	}
}

func TestDialerAddressErrors(t *testing.T) {
	checkGoroutines(t)
	d := NewQUICDialer(ClientTLSConfig(testNodeTLS(t).CAPool, ""), DialerHandshakeTimeout(time.Second))
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{"no-port", "127.0.0.1:notaport", "[::1"} {
		_, err := d.DialContext(ctx, "tcp", addr)
		require.Error(t, err, fmt.Sprintf("dial %q", addr))
		require.True(t, !errors.Is(err, context.DeadlineExceeded), "dial %q timed out instead of failing: %v", addr, err)
	}
}
