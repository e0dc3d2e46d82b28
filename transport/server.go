package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultMaxInFlight is the per-connection request limit when ServerConfig
// leaves it unset. Kafka clients pipeline at most 5 by default, so this
// never throttles a well-behaved client.
const DefaultMaxInFlight = 64

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("transport: server closed")

// ServerConfig configures a listener. The zero value of every field but
// Handler selects its default.
type ServerConfig struct {
	Name          string        // listener name reported in ConnInfo.Listener
	Handler       Handler       // required
	MaxFrameBytes int           // request size limit; 0 → DefaultMaxFrameBytes (100 MiB)
	MaxInFlight   int           // requests per connection read but not yet answered; 0 → DefaultMaxInFlight
	IdleTimeout   time.Duration // close a connection with no request and no pending response for this long; 0 → never
	Logger        zerolog.Logger

	// Limits against hostile or broken clients (see limits.go for the
	// defaults that a zero value selects).

	// MaxPreAuthFrameBytes caps a request frame read while the connection
	// has no principal (ConnInfo.Principal). A larger one closes the
	// connection: before authentication only small requests (ApiVersions,
	// SASL) are legitimate, as with Kafka's sasl.server.max.receive.size.
	// 0 → DefaultMaxPreAuthFrameBytes.
	MaxPreAuthFrameBytes int
	// MaxConnsPerIP caps the TCP connections, or the QUIC connections,
	// one client IP address holds on this listener at a time; more are
	// refused. 0 → DefaultMaxConnsPerIP.
	MaxConnsPerIP int
	// MaxStreamsPerConn caps the concurrently open streams (Kafka
	// connections) of one QUIC connection; QUIC's flow control makes the
	// client wait for a free one. Ignored by TCP. 0 → DefaultMaxStreamsPerConn.
	MaxStreamsPerConn int
	// HandshakeTimeout bounds a TLS (TCP) or QUIC handshake.
	// 0 → DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// FrameTimeout bounds how long a request frame may take to arrive
	// once its first byte has, plus the frame's size at MinTransferRate:
	// a client that starts a request and then trickles or stalls
	// (slowloris) is disconnected. 0 → DefaultFrameTimeout.
	FrameTimeout time.Duration
	// WriteTimeout bounds writing one response, plus its size at
	// MinTransferRate: a client that stops reading is disconnected
	// instead of holding the connection's buffers forever.
	// 0 → DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MinTransferRate (bytes per second) is the slowest transfer the frame
	// and write timeouts allow for beyond their fixed part, so that large
	// frames over slow links are not cut off. 0 → DefaultMinTransferRate.
	MinTransferRate int
	// OnLimit, when set, is called each time a client runs into one of
	// the limits above (or the idle timeout), with the limit's name (the
	// Limit* constants), e.g. to count it in a metric. It must not block.
	OnLimit func(limit string)

	// OnConnect, when set, is called once per Kafka connection (a TCP
	// connection, or one QUIC stream) after its TLS handshake and before
	// its first frame is read, from the connection's goroutine. It is where
	// the handler establishes a principal known at connect time (a client
	// certificate, or an anonymous identity on listeners without SASL) with
	// ConnInfo.SetPrincipal; frames read while no principal is set are held
	// to the pre-authentication frame limit.
	OnConnect func(*ConnInfo)
}

// Validate reports the first invalid field.
func (c ServerConfig) Validate() error {
	switch {
	case c.Handler == nil:
		return errors.New("transport: listener config: Handler is required")
	case c.MaxFrameBytes < 0:
		return fmt.Errorf("transport: listener config: MaxFrameBytes must not be negative, got %d", c.MaxFrameBytes)
	case c.MaxInFlight < 0:
		return fmt.Errorf("transport: listener config: MaxInFlight must not be negative, got %d", c.MaxInFlight)
	case c.IdleTimeout < 0:
		return fmt.Errorf("transport: listener config: IdleTimeout must not be negative, got %s", c.IdleTimeout)
	case c.MaxPreAuthFrameBytes < 0, c.MaxConnsPerIP < 0, c.MaxStreamsPerConn < 0, c.MinTransferRate < 0:
		return fmt.Errorf("transport: listener config: MaxPreAuthFrameBytes (%d), MaxConnsPerIP (%d), MaxStreamsPerConn (%d) and MinTransferRate (%d) must not be negative",
			c.MaxPreAuthFrameBytes, c.MaxConnsPerIP, c.MaxStreamsPerConn, c.MinTransferRate)
	case c.HandshakeTimeout < 0, c.FrameTimeout < 0, c.WriteTimeout < 0:
		return fmt.Errorf("transport: listener config: HandshakeTimeout (%s), FrameTimeout (%s) and WriteTimeout (%s) must not be negative",
			c.HandshakeTimeout, c.FrameTimeout, c.WriteTimeout)
	}
	return nil
}

func (c ServerConfig) connOptions(transport string) (*connOptions, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := &connOptions{
		listener:    c.Name,
		handler:     c.Handler,
		maxFrame:    c.MaxFrameBytes,
		maxInFlight: c.MaxInFlight,
		idle:        c.IdleTimeout,
		onConnect:   c.OnConnect,
		log:         c.Logger.With().Str("listener", c.Name).Str("transport", transport).Logger(),
	}
	if o.maxFrame == 0 {
		o.maxFrame = DefaultMaxFrameBytes
	}
	if o.maxInFlight == 0 {
		o.maxInFlight = DefaultMaxInFlight
	}
	o.maxPreAuthFrame = cmp.Or(c.MaxPreAuthFrameBytes, DefaultMaxPreAuthFrameBytes)
	o.maxConnsPerIP = cmp.Or(c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	o.maxStreams = cmp.Or(c.MaxStreamsPerConn, DefaultMaxStreamsPerConn)
	o.handshakeTimeout = cmp.Or(c.HandshakeTimeout, DefaultHandshakeTimeout)
	o.frameTimeout = cmp.Or(c.FrameTimeout, DefaultFrameTimeout)
	o.writeTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	o.minRate = cmp.Or(c.MinTransferRate, DefaultMinTransferRate)
	o.onLimit = c.OnLimit
	// Limit hits can come in floods (a client reconnecting in a loop): a
	// few lines per period say what is going on without drowning the log.
	o.limitLog = o.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	return o, nil
}

// acceptor is the transport-specific half of a Server.
type acceptor interface {
	addr() net.Addr
	// accept accepts and serves connections (each through s.goServe) until
	// ctx ends or the listener fails. Connection goroutines must end once
	// ctx is done.
	accept(ctx context.Context, s *Server) error
	// release frees the socket; called once, after every connection ended.
	release() error
}

// Server is a TCP or QUIC listener serving Kafka connections to a
// Handler. Its methods are safe for concurrent use.
type Server struct {
	name string
	opts *connOptions
	acc  acceptor

	mu      sync.Mutex
	closed  bool
	serving bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when Serve has shut down

	conns       sync.WaitGroup
	releaseOnce sync.Once
	releaseErr  error
}

func newServer(cfg ServerConfig, opts *connOptions, acc acceptor) *Server {
	return &Server{name: cfg.Name, opts: opts, acc: acc}
}

// Addr is the address the listener is bound to (with the actual port when
// it listened on port 0).
func (s *Server) Addr() net.Addr { return s.acc.addr() }

// Serve accepts and serves connections until ctx is done or Close is
// called; it then closes every connection, waits for all their goroutines
// and releases the socket before it returns. It returns nil after such a
// requested stop, ErrServerClosed if Close came first, and the listener's
// error if accepting failed. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("transport: listener %q: Serve called twice", s.name)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.serving, s.cancel, s.done = true, cancel, make(chan struct{})
	s.mu.Unlock()
	defer close(s.done)

	err := s.acc.accept(ctx, s)
	if ctx.Err() != nil {
		err = nil // asked to stop: the accept error is how it stopped
	}
	cancel()
	s.conns.Wait()
	if rerr := s.release(); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("transport: serve %q on %s: %w", s.name, s.Addr(), err)
	}
	return nil
}

// Close stops Serve and waits until it has closed every connection and
// released the socket; without a running Serve it just releases the
// socket. Close must not be called from a Handler or Responder, which
// would wait for itself.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
		return nil
	}
	if already {
		return nil
	}
	return s.release()
}

// goServe runs fn as a connection goroutine that Serve waits for.
func (s *Server) goServe(fn func()) { s.conns.Go(fn) }

func (s *Server) release() error {
	s.releaseOnce.Do(func() { s.releaseErr = s.acc.release() })
	return s.releaseErr
}
