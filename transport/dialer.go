package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"
)

// ErrDialerClosed is returned by DialContext after Close.
var ErrDialerClosed = fmt.Errorf("transport: quic dialer closed: %w", net.ErrClosed)

// DialerOpt configures a QUICDialer.
type DialerOpt func(*dialerConfig)

type dialerConfig struct {
	handshakeTimeout time.Duration
	keepAlive        time.Duration
	maxIdle          time.Duration
	log              zerolog.Logger
}

// DialerHandshakeTimeout bounds establishing a QUIC connection, including
// the TLS handshake. Default 10 s. A dial's own context may end it sooner
// for that caller, but the handshake goes on for the other callers
// waiting on it.
func DialerHandshakeTimeout(d time.Duration) DialerOpt {
	return func(c *dialerConfig) { c.handshakeTimeout = d }
}

// DialerKeepAlive sets how often an idle connection is pinged, which also
// keeps NAT bindings of edge links open. Default 15 s; 0 disables it.
func DialerKeepAlive(d time.Duration) DialerOpt {
	return func(c *dialerConfig) { c.keepAlive = d }
}

// DialerMaxIdleTimeout sets after how long without any packet from the
// broker a connection counts as dead (the smaller of the broker's and this
// value applies). Default 60 s.
func DialerMaxIdleTimeout(d time.Duration) DialerOpt {
	return func(c *dialerConfig) { c.maxIdle = d }
}

// DialerLogger sets where connection events go (at debug level). Default:
// nowhere.
func DialerLogger(l zerolog.Logger) DialerOpt {
	return func(c *dialerConfig) { c.log = l }
}

// QUICDialer gives Kafka clients (franz-go's kgo.Dialer) one net.Conn per
// QUIC bidirectional stream, over one shared QUIC connection per broker
// address and one UDP socket for all of them. It is safe for concurrent
// use.
type QUICDialer struct {
	tlsConf *tls.Config
	qconf   *quic.Config
	log     zerolog.Logger

	ctx    context.Context // ends handshakes in flight on Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	udp    *net.UDPConn
	tr     *quic.Transport
	conns  map[string]*dialedConn // by address as dialed

	handshakes sync.WaitGroup
}

// dialedConn is one QUIC connection, established once and shared by the
// dials that arrive while its handshake runs (singleflight).
type dialedConn struct {
	done chan struct{} // closed when the handshake ended; then conn or err is set
	conn *quic.Conn
	err  error

	// Set before the handshake starts, under the dialer's mutex.
	raddr  netip.AddrPort
	cancel context.CancelCauseFunc // ends the handshake
}

// errUnreachable is the cause of a connection or handshake ended because
// the kernel reported the broker's port unreachable: what a TCP dial
// reports as a refused connection.
var errUnreachable = &os.SyscallError{Syscall: "quic handshake (ICMP port unreachable)", Err: syscall.ECONNREFUSED}

// NewQUICDialer returns a dialer that verifies brokers with tlsConf,
// typically ClientTLSConfig with the node CA. An empty ServerName is taken
// from the host of each dialed address; empty NextProtos become [ALPN]; nil
// means the system roots. Nothing is opened until the first dial.
func NewQUICDialer(tlsConf *tls.Config, opts ...DialerOpt) *QUICDialer {
	cfg := dialerConfig{
		handshakeTimeout: quicHandshakeTO,
		keepAlive:        quicKeepAlive,
		maxIdle:          quicMaxIdle,
		log:              zerolog.Nop(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	var tc *tls.Config
	if tlsConf != nil {
		tc = tlsConf.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS13}
	}
	if len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{ALPN}
	}
	qc := quicConfig(cfg.keepAlive, cfg.maxIdle, cfg.handshakeTimeout)
	// Brokers never open streams towards a client.
	qc.MaxIncomingStreams = -1
	ctx, cancel := context.WithCancel(context.Background())
	return &QUICDialer{
		tlsConf: tc,
		qconf:   qc,
		log:     cfg.log,
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[string]*dialedConn),
	}
}

// DialContext opens a new stream to the broker at addr ("host:port") and
// returns it as a net.Conn. network is ignored (kgo passes "tcp"): the
// stream always goes over QUIC on UDP. The QUIC connection to addr is
// established on first use and re-established after it died.
func (d *QUICDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		conn, err := d.conn(ctx, addr)
		if err != nil {
			// The shape of a failed TCP dial, so Kafka clients treat it
			// alike (kgo moves to another broker on a refused dial).
			return nil, &net.OpError{Op: "dial", Net: "quic", Addr: addrOf(addr), Err: err}
		}
		str, err := conn.OpenStreamSync(ctx)
		if err == nil {
			return newStreamConn(conn, str), nil
		}
		if ctx.Err() != nil || attempt > 0 {
			return nil, fmt.Errorf("transport: open stream to %s: %w", addr, err)
		}
		// Other than through ctx, opening a stream fails only on a closed
		// connection (the broker restarted, say), which its context may not
		// show yet: one more try on a fresh one.
		d.forget(addr, conn)
	}
}

// forget drops conn as the connection to addr, unless it was replaced
// already.
func (d *QUICDialer) forget(addr string, conn *quic.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dc := d.conns[addr]
	if dc == nil {
		return
	}
	select {
	case <-dc.done:
		if dc.conn == conn {
			delete(d.conns, addr)
		}
	default: // a new handshake already replaced it
	}
}

// conn returns the live QUIC connection to addr, starting a handshake when
// there is none, and waits for it at most until ctx ends.
func (d *QUICDialer) conn(ctx context.Context, addr string) (*quic.Conn, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrDialerClosed
	}
	dc := d.conns[addr]
	if dc != nil {
		select {
		case <-dc.done:
			if dc.err != nil || dc.conn.Context().Err() != nil {
				dc = nil // failed or died: replace it
			}
		default: // handshake in flight: wait for it
		}
	}
	if dc == nil {
		dc = &dialedConn{done: make(chan struct{})}
		d.conns[addr] = dc
		// The handshake runs on the dialer's context, not the caller's, so
		// that one caller giving up does not fail the others sharing it.
		d.handshakes.Go(func() { d.handshake(dc, addr) })
	}
	d.mu.Unlock()

	select {
	case <-dc.done:
		return dc.conn, dc.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (d *QUICDialer) handshake(dc *dialedConn, addr string) {
	defer close(dc.done)
	cctx, cancelCause := context.WithCancelCause(d.ctx)
	defer cancelCause(nil)
	ctx, cancel := context.WithTimeout(cctx, d.qconf.HandshakeIdleTimeout)
	defer cancel()
	host, raddr, err := resolveUDP(ctx, addr)
	if err != nil {
		dc.err = err
		return
	}
	d.mu.Lock()
	dc.raddr, dc.cancel = raddr.AddrPort(), cancelCause
	d.mu.Unlock()
	tr, err := d.transport()
	if err != nil {
		dc.err = err
		return
	}
	tc := d.tlsConf.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	conn, err := tr.Dial(ctx, raddr, tc, d.qconf)
	if err != nil {
		if cause := context.Cause(cctx); errors.Is(cause, errUnreachable) {
			err = cause
		}
		dc.err = fmt.Errorf("quic handshake with %s: %w", raddr, err)
		d.log.Debug().Err(err).Str("addr", addr).Msg("quic connection failed")
		return
	}
	dc.conn = conn
	d.log.Debug().Str("addr", addr).Stringer("local", conn.LocalAddr()).Msg("quic connection established")
}

// transport returns the dialer's one quic.Transport, opening its UDP socket
// on first use.
func (d *QUICDialer) transport() (*quic.Transport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrDialerClosed
	}
	if d.tr != nil {
		return d.tr, nil
	}
	// An unspecified address gives a dual-stack socket, so one socket
	// reaches brokers over IPv4 and IPv6 alike.
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("open udp socket: %w", err)
	}
	d.udp, d.tr = udp, &quic.Transport{Conn: wrapUnreachable(udp, d.unreachable)}
	return d.tr, nil
}

// unreachable fails at once every connection and handshake to a broker
// address the kernel reported unreachable, as TCP would with a refused
// connection, so clients move to another broker without waiting out QUIC
// timeouts. It runs on the socket's reading goroutine: no blocking.
func (d *QUICDialer) unreachable(ap netip.AddrPort) {
	d.mu.Lock()
	var victims []*dialedConn
	for _, dc := range d.conns {
		if dc.raddr == ap {
			victims = append(victims, dc)
		}
	}
	d.mu.Unlock()
	for _, dc := range victims {
		select {
		case <-dc.done:
			if dc.conn != nil {
				// Closing sends a CONNECTION_CLOSE, which may bounce again:
				// harmless. Done off this goroutine, which quic-go needs
				// to keep reading.
				go dc.conn.CloseWithError(codeNoError, errUnreachable.Error())
			}
		default:
			if dc.cancel != nil {
				dc.cancel(errUnreachable)
			}
		}
	}
	if len(victims) > 0 {
		d.log.Debug().Stringer("addr", ap).Msg("broker unreachable; failed its quic connection")
	}
}

// addrOf is addr as a net.Addr for error messages.
func addrOf(addr string) net.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.UDPAddrFromAddrPort(ap)
	}
	return nil
}

func resolveUDP(ctx context.Context, addr string) (host string, _ *net.UDPAddr, _ error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("resolve %s: %w", addr, err)
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
	if err != nil {
		return "", nil, fmt.Errorf("resolve %s: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return host, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port))), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", nil, fmt.Errorf("resolve %s: %w", addr, err)
	}
	if len(ips) == 0 {
		return "", nil, fmt.Errorf("resolve %s: no addresses", addr)
	}
	return host, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(port))), nil
}

// Close closes every QUIC connection (telling the brokers) and the UDP
// socket. Streams handed out fail from then on. Further dials fail with
// ErrDialerClosed.
func (d *QUICDialer) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()

	d.cancel()
	d.handshakes.Wait()
	// No handshake can start or finish now: conns, tr and udp are settled.
	// The socket's reader may still look at conns (unreachable), so take
	// them under the lock.
	d.mu.Lock()
	conns := make([]*dialedConn, 0, len(d.conns))
	for _, dc := range d.conns {
		conns = append(conns, dc)
	}
	clear(d.conns)
	d.mu.Unlock()
	for _, dc := range conns {
		if dc.conn != nil {
			_ = dc.conn.CloseWithError(codeNoError, "client closed")
		}
	}
	if d.tr == nil {
		return nil
	}
	// Transport.Close does not close a socket it was given.
	if err := errors.Join(d.tr.Close(), d.udp.Close()); err != nil {
		return fmt.Errorf("transport: close quic dialer: %w", err)
	}
	return nil
}

// streamConn is one QUIC stream as a net.Conn.
type streamConn struct {
	str           *quic.Stream
	local, remote net.Addr

	// quic-go forbids SendStream.Close concurrently with Write, while
	// net.Conn allows Close at any time (kgo closes to interrupt a stuck
	// write). So Close only closes the send side when no Write runs, and
	// resets it otherwise.
	mu      sync.Mutex
	writers int
	closed  bool
}

func newStreamConn(conn *quic.Conn, str *quic.Stream) *streamConn {
	return &streamConn{str: str, local: conn.LocalAddr(), remote: conn.RemoteAddr()}
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.str.Read(p)
	if err != nil && c.isClosed() {
		err = net.ErrClosed
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.writers++
	c.mu.Unlock()

	n, err := c.str.Write(p)

	c.mu.Lock()
	c.writers--
	closed := c.closed
	c.mu.Unlock()
	if err != nil && closed {
		err = net.ErrClosed
	}
	return n, err
}

// Close closes the send side, so that data already written still arrives
// (an acks=0 produce), and cancels the receive side, so that the broker
// stops serving the stream and both ends release it.
func (c *streamConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	writing := c.writers > 0
	c.mu.Unlock()

	var err error
	if writing {
		c.str.CancelWrite(codeAborted)
	} else {
		err = c.str.Close()
	}
	c.str.CancelRead(codeNoError)
	return err
}

func (c *streamConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *streamConn) LocalAddr() net.Addr                { return c.local }
func (c *streamConn) RemoteAddr() net.Addr               { return c.remote }
func (c *streamConn) SetDeadline(t time.Time) error      { return c.str.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.str.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.str.SetWriteDeadline(t) }
