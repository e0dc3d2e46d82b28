package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/stretchr/testify/require"
)

var testTLSDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-transport-tls")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testTLSDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// nodeTLS is one node's TLS material shared by the tests that do not test
// TLS itself.
var nodeTLS = sync.OnceValues(func() (*NodeTLS, error) {
	return EnsureNodeTLS(testTLSDir, []string{"127.0.0.1"})
})

func testNodeTLS(t testing.TB) *NodeTLS {
	t.Helper()
	n, err := nodeTLS()
	require.NoError(t, err)
	return n
}

// checkGoroutines fails the test if goroutines started during it are
// still running after its cleanups. Register it first: cleanups run last
// in, first out, so it runs after every server and client is closed.
func checkGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d goroutines, %d before the test\n%s", n, before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("TRANSPORT_TEST_DEBUG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
}

// testHandler interprets a tiny command language in request frames:
//
//	echo:<data>        respond <data>
//	sleep:<ms>:<data>  respond <data> after ms milliseconds
//	block:<data>       respond <data> once release is closed (or ctx ends)
//	none               no response (like acks=0)
//	fail               the Responder fails, closing the connection
//	info               respond "<transport> <listener> <remote addr> <tls>"
//	ack                respond 8 bytes (benchmarks)
//	fetch:<n>          respond n bytes (benchmarks)
type testHandler struct {
	release chan struct{}

	served    atomic.Int64 // ServeFrame calls
	responded atomic.Int64 // Responder calls
	cancelled atomic.Int64 // Responders that saw their ctx end

	mu        sync.Mutex
	order     []string // frames in the order ServeFrame saw them, when record is set
	record    bool
	oversized []oversizedCall
	blocked   chan string // receives the data of each block: request as it starts waiting
}

type oversizedCall struct {
	head []byte
	size int
}

var fetchPayload = bytes.Repeat([]byte{'f'}, 4<<20)

func newTestHandler() *testHandler {
	return &testHandler{release: make(chan struct{}), blocked: make(chan string, 1024)}
}

func (h *testHandler) ServeFrame(ctx context.Context, c *ConnInfo, frame []byte) Responder {
	h.served.Add(1)
	if h.record {
		h.mu.Lock()
		h.order = append(h.order, string(frame))
		h.mu.Unlock()
	}
	if bytes.HasPrefix(frame, []byte("ack:")) {
		// Benchmarks: do not copy the payload.
		return func(context.Context) ([]byte, error) {
			h.responded.Add(1)
			return []byte("ack00000"), nil
		}
	}
	// Copy: frame is only valid during ServeFrame.
	cmd, arg, _ := strings.Cut(string(frame), ":")
	switch cmd {
	case "ack":
		return func(context.Context) ([]byte, error) {
			h.responded.Add(1)
			return []byte("ack00000"), nil
		}
	case "fetch":
		n, _ := strconv.Atoi(arg)
		return func(context.Context) ([]byte, error) {
			h.responded.Add(1)
			return fetchPayload[:n], nil
		}
	case "echo":
		return h.respond(func(context.Context) ([]byte, error) { return []byte(arg), nil })
	case "sleep":
		ms, data, _ := strings.Cut(arg, ":")
		d, _ := strconv.Atoi(ms)
		return h.respond(func(ctx context.Context) ([]byte, error) {
			select {
			case <-time.After(time.Duration(d) * time.Millisecond):
				return []byte(data), nil
			case <-ctx.Done():
				h.cancelled.Add(1)
				return nil, ctx.Err()
			}
		})
	case "block":
		return h.respond(func(ctx context.Context) ([]byte, error) {
			h.blocked <- arg
			select {
			case <-h.release:
				return []byte(arg), nil
			case <-ctx.Done():
				h.cancelled.Add(1)
				return nil, ctx.Err()
			}
		})
	case "none":
		return h.respond(func(context.Context) ([]byte, error) { return nil, nil })
	case "fail":
		return h.respond(func(context.Context) ([]byte, error) { return nil, errors.New("test failure") })
	case "auth":
		// What a SASL handler does once the exchange succeeded.
		c.SetPrincipal(arg)
		return h.respond(func(context.Context) ([]byte, error) { return []byte("authenticated"), nil })
	case "info":
		tlsOn := c.TLS != nil
		s := fmt.Sprintf("%s %s %s %t", c.Transport, c.Listener, c.RemoteAddr, tlsOn)
		return h.respond(func(context.Context) ([]byte, error) { return []byte(s), nil })
	}
	return h.respond(func(context.Context) ([]byte, error) { return nil, fmt.Errorf("unknown command %q", cmd) })
}

func (h *testHandler) respond(r Responder) Responder {
	return func(ctx context.Context) ([]byte, error) {
		h.responded.Add(1)
		return r(ctx)
	}
}

func (h *testHandler) ServeOversized(ctx context.Context, c *ConnInfo, head []byte, size int) Responder {
	h.served.Add(1)
	h.mu.Lock()
	h.oversized = append(h.oversized, oversizedCall{head: bytes.Clone(head), size: size})
	h.mu.Unlock()
	msg := fmt.Sprintf("oversized:%d:%d", size, len(head))
	return h.respond(func(context.Context) ([]byte, error) { return []byte(msg), nil })
}

// transportKinds are the ways a client reaches a listener.
var transportKinds = []string{"tcp", "tcp+tls", "quic"}

type testServer struct {
	kind string
	srv  *Server
	errc chan error
}

// startServer starts a listener of kind on addr (127.0.0.1:0 when empty)
// and closes it at cleanup.
func startServer(t testing.TB, kind, addr string, h Handler, mod func(*ServerConfig)) *testServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// Connections are authenticated from the start unless a test clears
	// OnConnect to exercise the pre-authentication limits.
	cfg := ServerConfig{Name: "test-" + kind, Handler: h, Logger: testLogger(t),
		OnConnect: func(c *ConnInfo) { c.SetPrincipal("User:test") }}
	if mod != nil {
		mod(&cfg)
	}
	var srv *Server
	var err error
	switch kind {
	case "tcp":
		srv, err = ListenTCP(addr, nil, cfg)
	case "tcp+tls":
		srv, err = ListenTCP(addr, testNodeTLS(t).ServerConfig(), cfg)
	case "quic":
		srv, err = ListenQUIC(addr, testNodeTLS(t).ServerConfig(ALPN), cfg)
	default:
		t.Fatalf("unknown transport kind %q", kind)
	}
	require.NoError(t, err)
	ts := &testServer{kind: kind, srv: srv, errc: make(chan error, 1)}
	go func() { ts.errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop closes the server and checks that Serve returned cleanly.
func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, ts.srv.Close())
	select {
	case err := <-ts.errc:
		ts.errc <- nil                        // stop is idempotent
		if !errors.Is(err, ErrServerClosed) { // Close may come before Serve started
			require.NoError(t, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

func (ts *testServer) addr() string { return ts.srv.Addr().String() }

func (ts *testServer) quicAccepted() int64 { return ts.srv.acc.(*quicAcceptor).accepted.Load() }

// testClient dials servers of any kind; QUIC dials share one QUICDialer.
type testClient struct {
	t      testing.TB
	dialer *QUICDialer
}

func newTestClient(t testing.TB, opts ...DialerOpt) *testClient {
	t.Helper()
	c := &testClient{t: t, dialer: NewQUICDialer(ClientTLSConfig(testNodeTLS(t).CAPool, ""), opts...)}
	t.Cleanup(func() { require.NoError(t, c.dialer.Close()) })
	return c
}

func (c *testClient) dial(ts *testServer) net.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conn net.Conn
	var err error
	switch ts.kind {
	case "tcp":
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", ts.addr())
	case "tcp+tls":
		d := tls.Dialer{Config: &tls.Config{RootCAs: testNodeTLS(c.t).CAPool, ServerName: "127.0.0.1"}}
		conn, err = d.DialContext(ctx, "tcp", ts.addr())
	case "quic":
		conn, err = c.dialer.DialContext(ctx, "tcp", ts.addr())
	}
	require.NoError(c.t, err)
	c.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// closeWrite half-closes conn: the server reads EOF but can still answer.
func closeWrite(t testing.TB, conn net.Conn) {
	t.Helper()
	switch c := conn.(type) {
	case *net.TCPConn:
		require.NoError(t, c.CloseWrite())
	case *tls.Conn:
		require.NoError(t, c.CloseWrite())
	case *streamConn:
		require.NoError(t, c.str.Close())
	default:
		t.Fatalf("cannot half-close %T", conn)
	}
}

func send(t testing.TB, conn net.Conn, reqs ...string) {
	t.Helper()
	var buf []byte
	for _, r := range reqs {
		buf = AppendFrame(buf, []byte(r))
	}
	_, err := conn.Write(buf)
	require.NoError(t, err)
}

func recv(t testing.TB, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	frame, err := ReadFrame(conn, nil, 0)
	require.NoError(t, err)
	return string(frame)
}

// expectClosed asserts that the server ends conn without another response.
func expectClosed(t testing.TB, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	frame, err := ReadFrame(conn, nil, 0)
	require.Error(t, err, "got response %q", frame)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open: %v", err)
	}
	if !errors.Is(err, io.EOF) {
		t.Logf("connection ended with %v", err)
	}
}

func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
