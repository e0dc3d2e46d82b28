package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// ListenTCP listens for Kafka connections on a TCP address. tlsConf nil
// means plaintext; otherwise every connection must complete a TLS handshake
// first. Call Serve to start accepting.
func ListenTCP(addr string, tlsConf *tls.Config, cfg ServerConfig) (*Server, error) {
	opts, err := cfg.connOptions("tcp")
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen tcp %s: %w", addr, err)
	}
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
	}
	return newServer(cfg, opts, &tcpAcceptor{ln: ln, tlsConf: tlsConf, opts: opts, perIP: newIPLimiter(opts.maxConnsPerIP)}), nil
}

type tcpAcceptor struct {
	ln      net.Listener
	tlsConf *tls.Config
	opts    *connOptions
	perIP   *ipLimiter
}

func (a *tcpAcceptor) addr() net.Addr { return a.ln.Addr() }

func (a *tcpAcceptor) accept(ctx context.Context, s *Server) error {
	stop := context.AfterFunc(ctx, func() { _ = a.ln.Close() })
	defer stop()
	var backoff time.Duration
	for {
		nc, err := a.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			// Running out of file descriptors or a connection aborted
			// before accept is transient: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.opts.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return err
			}
		}
		backoff = 0
		ip := ipOf(nc.RemoteAddr())
		if ok, n := a.perIP.acquire(ip); !ok {
			// Closed unanswered, as Kafka does for max.connections.per.ip:
			// the client sees the connection end and retries later.
			a.opts.limitHit(LimitConnsPerIP)
			a.opts.limitLog.Warn().Stringer("remote", nc.RemoteAddr()).Int("connections", n).
				Msg("refusing connection: too many connections from this address (limits.max_connections_per_ip)")
			_ = nc.Close()
			continue
		}
		s.goServe(func() {
			defer a.perIP.release(ip)
			a.serve(ctx, nc)
		})
	}
}

func (a *tcpAcceptor) serve(ctx context.Context, nc net.Conn) {
	info := &ConnInfo{
		Transport:  "tcp",
		Listener:   a.opts.listener,
		RemoteAddr: nc.RemoteAddr(),
		LocalAddr:  nc.LocalAddr(),
		ID:         connIDs.Add(1),
	}
	fc := &tcpConn{raw: nc, c: nc}
	if a.tlsConf != nil {
		tc := tls.Server(nc, a.tlsConf)
		hctx, cancel := context.WithTimeout(ctx, a.opts.handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if timedOut {
				a.opts.limitHit(LimitHandshakeTimeout)
				a.opts.limitLog.Warn().Stringer("remote", info.RemoteAddr).Dur("timeout", a.opts.handshakeTimeout).
					Msg("closing connection: TLS handshake not completed in time (limits.handshake_timeout)")
			} else {
				a.opts.log.Debug().Err(err).Stringer("remote", info.RemoteAddr).Msg("tls handshake failed")
			}
			_ = nc.Close()
			return
		}
		cs := tc.ConnectionState()
		info.TLS = &cs
		fc.c = tc
	}
	serveConn(ctx, fc, info, a.opts)
}

func (a *tcpAcceptor) release() error {
	if err := a.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close listener: %w", err)
	}
	return nil
}

// tcpConn is a Kafka connection over TCP, with or without TLS.
type tcpConn struct {
	raw net.Conn // the socket
	c   net.Conn // raw, or the TLS connection over it
}

func (t *tcpConn) Read(p []byte) (int, error)         { return t.c.Read(p) }
func (t *tcpConn) Write(p []byte) (int, error)        { return t.c.Write(p) }
func (t *tcpConn) SetReadDeadline(d time.Time) error  { return t.c.SetReadDeadline(d) }
func (t *tcpConn) SetWriteDeadline(d time.Time) error { return t.c.SetWriteDeadline(d) }
func (t *tcpConn) closeGracefully() error             { return t.c.Close() }

// abort closes the socket itself: closing a TLS connection would first try
// to send close_notify, which can block behind a stuck Write.
func (t *tcpConn) abort() { _ = t.raw.Close() }
