package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the TLS application protocol of Kafka over QUIC: every
// bidirectional stream carries one Kafka connection.
const ALPN = "eddy-kafka/1"

// QUIC application error codes of the eddy-kafka/1 protocol. Kafka errors
// travel inside responses; these codes only say how a stream or connection
// ended.
const (
	// codeNoError closes a connection on shutdown, and stops the receive
	// side of a stream whose Kafka connection ended normally.
	codeNoError = 0x0
	// codeAborted resets a stream whose Kafka connection was torn down
	// before it finished: a framing error, a failed request, shutdown.
	codeAborted = 0x1
)

const (
	quicKeepAlive   = 15 * time.Second
	quicMaxIdle     = 60 * time.Second
	quicStreamWin   = 1 << 20  // initial; auto-tuning grows it up to the max
	quicStreamMax   = 16 << 20 // a 16 MiB in flight per stream fills a 100 ms, 1.3 Gbit/s path
	quicConnWin     = 2 << 20
	quicConnMax     = 64 << 20
	quicHandshakeTO = DefaultHandshakeTimeout
)

// quicConfig is shared by the listener and the dialer. Large flow-control
// windows matter on edge links with high bandwidth-delay products: with
// quic-go's defaults (6 MiB per stream) one fetch stream could not fill
// such a link. Unidirectional streams and datagrams are not part of the
// protocol; 0-RTT stays off because Kafka requests are not replay-safe.
func quicConfig(keepAlive, maxIdle, handshake time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           handshake,
		MaxIdleTimeout:                 maxIdle,
		KeepAlivePeriod:                keepAlive,
		InitialStreamReceiveWindow:     quicStreamWin,
		MaxStreamReceiveWindow:         quicStreamMax,
		InitialConnectionReceiveWindow: quicConnWin,
		MaxConnectionReceiveWindow:     quicConnMax,
		MaxIncomingStreams:             DefaultMaxStreamsPerConn,
		MaxIncomingUniStreams:          -1,
		Allow0RTT:                      false,
	}
}

// ListenQUIC listens for QUIC connections on a UDP address. tlsConf is
// required; its NextProtos must include ALPN (it is set when empty). QUIC
// always negotiates TLS 1.3. Each bidirectional stream of an accepted
// connection is served as one Kafka connection. Call Serve to start
// accepting.
func ListenQUIC(addr string, tlsConf *tls.Config, cfg ServerConfig) (*Server, error) {
	opts, err := cfg.connOptions("quic")
	if err != nil {
		return nil, err
	}
	if tlsConf == nil {
		return nil, errors.New("transport: listen quic: a TLS config is required")
	}
	tlsConf = tlsConf.Clone()
	switch {
	case len(tlsConf.NextProtos) == 0:
		tlsConf.NextProtos = []string{ALPN}
	case !slices.Contains(tlsConf.NextProtos, ALPN):
		return nil, fmt.Errorf("transport: listen quic: TLS NextProtos %q lack %q", tlsConf.NextProtos, ALPN)
	}
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen quic %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen quic %s: %w", addr, err)
	}
	acc := &quicAcceptor{udp: udp, opts: opts, perIP: newIPLimiter(opts.maxConnsPerIP)}
	tr := &quic.Transport{
		Conn:              udp,
		StatelessResetKey: statelessResetKey(tlsConf),
		ConnContext:       acc.connContext,
		// A client address holding half its quota must prove it is not
		// spoofed (a Retry round trip) before it may take more: forged
		// Initial packets cannot then use up a real client's quota.
		VerifySourceAddress: func(addr net.Addr) bool {
			return acc.perIP.count(ipOf(addr)) >= max(opts.maxConnsPerIP/2, 1)
		},
	}
	qc := quicConfig(quicKeepAlive, quicMaxIdle, opts.handshakeTimeout)
	qc.MaxIncomingStreams = int64(opts.maxStreams)
	// Listen, not ListenEarly: connections are handed out only after the
	// handshake completed, and 0-RTT data is never accepted.
	ln, err := tr.Listen(tlsConf, qc)
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("transport: listen quic %s: %w", addr, err)
	}
	acc.tr, acc.ln = tr, ln
	return newServer(cfg, opts, acc), nil
}

// statelessResetKey derives the key from the node's private key, so that
// it survives a restart: a broker that crashed and came back then answers
// packets of its old connections with a stateless reset, and clients
// reconnect at once instead of waiting for their idle timeout. Without a
// static private key there is no stable key, and resets stay off.
func statelessResetKey(tlsConf *tls.Config) *quic.StatelessResetKey {
	if len(tlsConf.Certificates) == 0 || tlsConf.Certificates[0].PrivateKey == nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(tlsConf.Certificates[0].PrivateKey)
	if err != nil {
		return nil
	}
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("eddy quic stateless reset key v1"))
	var k quic.StatelessResetKey
	copy(k[:], mac.Sum(nil))
	return &k
}

type quicAcceptor struct {
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	opts *connOptions

	perIP *ipLimiter

	accepted atomic.Int64 // QUIC connections accepted, for tests and metrics
}

func (a *quicAcceptor) addr() net.Addr { return a.ln.Addr() }

// errTooManyConns refuses a QUIC connection over the per-address limit;
// the client gets CONNECTION_REFUSED.
var errTooManyConns = errors.New("transport: too many QUIC connections from this address")

// connContext runs when a client's first packet arrives, before the
// handshake: it counts the connection against its address's limit for as
// long as it lives (quic-go ends ctx with the connection, also when the
// handshake fails).
func (a *quicAcceptor) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	ip := ipOf(ci.RemoteAddr)
	if ok, n := a.perIP.acquire(ip); !ok {
		a.opts.limitHit(LimitConnsPerIP)
		a.opts.limitLog.Warn().Stringer("remote", ci.RemoteAddr).Int("connections", n).
			Msg("refusing QUIC connection: too many connections from this address (limits.max_connections_per_ip)")
		return nil, errTooManyConns
	}
	handshaken := new(atomic.Bool)
	context.AfterFunc(ctx, func() {
		a.perIP.release(ip)
		if handshaken.Load() {
			return
		}
		// Silence during the handshake ends it as an idle timeout, a
		// handshake that drags on as a handshake timeout.
		cause := context.Cause(ctx)
		_, idle := errors.AsType[*quic.IdleTimeoutError](cause)
		_, slow := errors.AsType[*quic.HandshakeTimeoutError](cause)
		if idle || slow {
			a.opts.limitHit(LimitHandshakeTimeout)
			a.opts.limitLog.Warn().Stringer("remote", ci.RemoteAddr).Dur("timeout", a.opts.handshakeTimeout).
				Msg("QUIC handshake not completed in time (limits.handshake_timeout)")
		}
	})
	return context.WithValue(ctx, handshakeKey{}, handshaken), nil
}

// handshakeKey marks, in a QUIC connection's context, the flag set once
// its handshake completed.
type handshakeKey struct{}

func markHandshaken(conn *quic.Conn) {
	if f, ok := conn.Context().Value(handshakeKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

func (a *quicAcceptor) accept(ctx context.Context, s *Server) error {
	for {
		conn, err := a.ln.Accept(ctx)
		if err != nil {
			return err
		}
		a.accepted.Add(1)
		markHandshaken(conn)
		s.goServe(func() { a.serveConn(ctx, conn) })
	}
}

// serveConn serves the streams of one QUIC connection, each concurrently,
// until the connection or ctx ends, and returns once all have ended.
func (a *quicAcceptor) serveConn(ctx context.Context, conn *quic.Conn) {
	// The streams do not end with ctx directly but with the connection, so
	// that on shutdown the client first hears CONNECTION_CLOSE rather than
	// a RESET_STREAM per stream, which it could mistake for the end of just
	// that stream and open the next one on a connection about to close.
	streamCtx, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(conn.Context(), cancelStreams)
	cs := conn.ConnectionState().TLS
	log := a.opts.log.With().Stringer("remote", conn.RemoteAddr()).Logger()
	log.Debug().Msg("quic connection accepted")

	var streams sync.WaitGroup
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			log.Debug().Err(err).Msg("quic connection ended")
			break
		}
		info := &ConnInfo{
			Transport:  "quic",
			Listener:   a.opts.listener,
			RemoteAddr: conn.RemoteAddr(),
			LocalAddr:  conn.LocalAddr(),
			TLS:        &cs,
			ID:         connIDs.Add(1),
		}
		streams.Go(func() { serveStream(streamCtx, str, info, a.opts) })
	}
	// A no-op when the peer closed; on shutdown it tells the client at
	// once instead of leaving it to its idle timeout.
	_ = conn.CloseWithError(codeNoError, "server shutting down")
	stop()
	cancelStreams()
	streams.Wait()
}

func serveStream(ctx context.Context, str *quic.Stream, info *ConnInfo, opts *connOptions) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The stream's context ends when the peer stops reading (STOP_SENDING):
	// cancel pending Responders (a long-poll fetch) now, not at the next
	// write.
	stop := context.AfterFunc(str.Context(), func() { cancel(context.Cause(str.Context())) })
	defer stop()
	serveConn(ctx, &quicStream{s: str}, info, opts)
}

func (a *quicAcceptor) release() error {
	err := a.ln.Close()
	// Connections whose handshake completed after the accept loop stopped
	// wait in the listener's queue: tell them too.
	for {
		conn, aerr := a.ln.Accept(context.Background())
		if aerr != nil {
			break
		}
		_ = conn.CloseWithError(codeNoError, "server shutting down")
	}
	// Transport.Close does not close a socket it was given.
	err = errors.Join(err, a.tr.Close(), a.udp.Close())
	if err != nil {
		return fmt.Errorf("close quic listener: %w", err)
	}
	return nil
}

// quicStream is a Kafka connection over one bidirectional QUIC stream.
type quicStream struct{ s *quic.Stream }

func (q *quicStream) Read(p []byte) (int, error)         { return q.s.Read(p) }
func (q *quicStream) Write(p []byte) (int, error)        { return q.s.Write(p) }
func (q *quicStream) SetReadDeadline(t time.Time) error  { return q.s.SetReadDeadline(t) }
func (q *quicStream) SetWriteDeadline(t time.Time) error { return q.s.SetWriteDeadline(t) }

// closeGracefully sends FIN after the responses, which quic-go keeps
// retransmitting until acknowledged, and stops the receive side unless the
// peer's FIN was already read, so the stream is released on both ends.
func (q *quicStream) closeGracefully() error {
	err := q.s.Close()
	q.s.CancelRead(codeNoError)
	return err
}

func (q *quicStream) abort() {
	q.s.CancelWrite(codeAborted)
	q.s.CancelRead(codeAborted)
}
