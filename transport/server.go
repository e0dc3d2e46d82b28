package transport

import (
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
		log:         c.Logger.With().Str("listener", c.Name).Str("transport", transport).Logger(),
	}
	if o.maxFrame == 0 {
		o.maxFrame = DefaultMaxFrameBytes
	}
	if o.maxInFlight == 0 {
		o.maxInFlight = DefaultMaxInFlight
	}
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
