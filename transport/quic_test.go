package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

func TestQUICStreamsAreServedConcurrently(t *testing.T) {
	checkGoroutines(t)
	h := newTestHandler()
	ts := startServer(t, "quic", "", h, nil)
	client := newTestClient(t)

	slow := client.dial(ts)
	send(t, slow, "block:slow")
	<-h.blocked

	// A stream whose request is stuck does not hold up the others of the
	// same QUIC connection.
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		conn := client.dial(ts)
		wg.Go(func() {
			want := fmt.Sprintf("fast%d", i)
			if _, err := conn.Write(AppendFrame(nil, []byte("echo:"+want))); err != nil {
				errs <- err
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := ReadFrame(conn, nil, 0)
			if err == nil && string(got) != want {
				err = fmt.Errorf("got %q, want %q", got, want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(1), ts.quicAccepted(), "all streams must share one QUIC connection")

	close(h.release)
	require.Equal(t, "slow", recv(t, slow))
}

func TestQUICClientClosingStreamReleasesIt(t *testing.T) {
	checkGoroutines(t)
	h := newTestHandler()
	ts := startServer(t, "quic", "", h, nil)
	client := newTestClient(t)

	// A client that gives up on a stream with a long-poll pending: the
	// server cancels the Responder at once instead of when it completes.
	conn := client.dial(ts)
	send(t, conn, "block:abandoned")
	<-h.blocked
	require.NoError(t, conn.Close())
	eventually(t, func() bool { return h.cancelled.Load() == 1 }, "pending Responder not cancelled")

	// Many short-lived streams: each is released on both ends, so the
	// stream limit is never exhausted and the connection stays usable.
	for range 3 * DefaultMaxStreamsPerConn / 2 {
		c := client.dial(ts)
		send(t, c, "echo:x")
		require.Equal(t, "x", recv(t, c))
		require.NoError(t, c.Close())
	}
	require.Equal(t, int64(1), ts.quicAccepted())
}

func TestQUICRequiresTLSAndALPN(t *testing.T) {
	checkGoroutines(t)
	cfg := ServerConfig{Handler: newTestHandler()}
	_, err := ListenQUIC("127.0.0.1:0", nil, cfg)
	require.ErrorContains(t, err, "TLS config is required")
	_, err = ListenQUIC("127.0.0.1:0", testNodeTLS(t).ServerConfig("h3"), cfg)
	require.ErrorContains(t, err, ALPN)

	// Empty NextProtos get ALPN; a client speaking another protocol is
	// refused in the handshake.
	srv, err := ListenQUIC("127.0.0.1:0", testNodeTLS(t).ServerConfig(), cfg)
	require.NoError(t, err)
	ts := &testServer{kind: "quic", srv: srv, errc: make(chan error, 1)}
	go func() { ts.errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() { ts.stop(t) })

	tc := ClientTLSConfig(testNodeTLS(t).CAPool, "")
	tc.NextProtos = []string{"h3"}
	d := NewQUICDialer(tc)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = d.DialContext(ctx, "tcp", ts.addr())
	require.ErrorContains(t, err, "application protocol")

	conn := newTestClient(t).dial(ts)
	send(t, conn, "echo:ok")
	require.Equal(t, "ok", recv(t, conn))
}

func TestQUICRefusesZeroRTT(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)

	// Resume a session and try 0-RTT: the server never accepts early data.
	tc := ClientTLSConfig(testNodeTLS(t).CAPool, "127.0.0.1")
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 2 {
		conn, err := quic.DialAddrEarly(ctx, ts.addr(), tc, &quic.Config{})
		require.NoError(t, err)
		str, err := conn.OpenStreamSync(ctx)
		require.NoError(t, err)
		_, err = str.Write(AppendFrame(nil, []byte("echo:early")))
		require.NoError(t, err)
		got, err := ReadFrame(str, nil, 0)
		// Either 0-RTT was rejected (the request is resent after the
		// handshake) or not even attempted; it must never be used.
		if err == nil {
			require.Equal(t, "early", string(got))
		}
		<-conn.HandshakeComplete()
		require.True(t, !conn.ConnectionState().Used0RTT, "attempt %d used 0-RTT", i)
		_ = conn.CloseWithError(0, "")
	}
}

func TestQUICServerShutdownTellsClients(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, "quic", "", newTestHandler(), nil)
	client := newTestClient(t)
	conn := client.dial(ts)
	send(t, conn, "echo:hi")
	require.Equal(t, "hi", recv(t, conn))

	ts.stop(t)
	// The client learns at once (CONNECTION_CLOSE), not after its idle
	// timeout.
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := ReadFrame(conn, nil, 0)
	require.Error(t, err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("client did not notice the shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("client noticed the shutdown after %s", d)
	}
	require.True(t, strings.Contains(err.Error(), "shutting down") || strings.Contains(err.Error(), "canceled"), "unexpected error %v", err)
}
