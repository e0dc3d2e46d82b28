package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Handler serves the requests of connections. ServeFrame is called for
// every request frame of one connection in arrival order and never
// concurrently for the same connection (it MAY be called concurrently for
// different connections). It should do the ordering-sensitive part of the
// work synchronously (e.g. submitting a produce) and return a Responder for
// the slow part; frame is only valid until ServeFrame returns.
//
// Every Responder returned is called exactly once, also when the
// connection is going down (then with a cancelled ctx), so a Responder may
// hold resources that it releases when called. A nil Responder means "no
// response", like a Responder returning (nil, nil).
//
// c is shared by all calls for the connection and must not be modified.
type Handler interface {
	ServeFrame(ctx context.Context, c *ConnInfo, frame []byte) Responder
	// ServeOversized is called instead of ServeFrame for a frame whose
	// declared length exceeds the limit. head holds the frame's first bytes
	// (up to OversizedHeadBytes, enough for any request header); the rest
	// of the frame is discarded by the connection (read and dropped without
	// buffering it) so the connection stays usable. The handler may answer
	// with an error response or return a Responder that returns an error to
	// close the connection. head is only valid until ServeOversized returns.
	ServeOversized(ctx context.Context, c *ConnInfo, head []byte, size int) Responder
}

// Responder produces the response to one request. The connection calls it
// from its writer goroutine, strictly in request order, so responses on
// one connection are written in the order requests arrived (Kafka clients
// pipeline up to 5+ requests). It may block until the response is ready or
// ctx is done. A nil payload with nil error means "no response" (Kafka
// acks=0). A non-nil error closes the connection after logging it.
// payload has been written in full before the next Responder is called or
// the connection closes, so its memory may be reused from then on.
type Responder func(ctx context.Context) (payload []byte, err error)

// ConnInfo describes one Kafka connection: a TCP connection or one
// bidirectional QUIC stream.
type ConnInfo struct {
	Transport  string // "quic" or "tcp"
	Listener   string // the listener's name given in ServerConfig.Name, e.g. "quic", "kafka"
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// TLS is nil for plaintext. All streams of one QUIC connection share it.
	TLS *tls.ConnectionState
	// ID is unique among the connections of this process.
	ID uint64

	// principal is the identity the handler established for the
	// connection (from a client certificate at connect, or SASL later);
	// nil until then.
	principal atomic.Pointer[string]
}

// SetPrincipal records who the connection has authenticated as. The
// handler calls it from ServerConfig.OnConnect (client certificates, or
// an anonymous identity on listeners without authentication) or when a
// SASL exchange succeeds. Frames read before it is set are held to the
// listener's pre-authentication frame limit.
func (c *ConnInfo) SetPrincipal(p string) { c.principal.Store(&p) }

// Principal returns the identity recorded by SetPrincipal, and false while
// the connection has not authenticated.
func (c *ConnInfo) Principal() (string, bool) {
	if p := c.principal.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// OversizedHeadBytes is how much of an oversized frame ServeOversized sees.
const OversizedHeadBytes = 64 << 10

const (
	// Small frames are the common case (produce acks, metadata, heartbeats);
	// larger ones bypass these buffers, so they need not be big.
	readBufferBytes  = 16 << 10
	writeBufferBytes = 16 << 10
	// A connection keeps its frame buffer between requests up to this size;
	// a rare huge frame should not pin its memory for the connection's life.
	maxRetainedFrameBytes = 8 << 20
)

var connIDs atomic.Uint64

// errIdle ends a connection that saw no request for IdleTimeout while no
// response was pending.
var errIdle = errors.New("transport: connection idle")

// frameConn is what a served Kafka connection runs over.
type frameConn interface {
	io.Reader
	io.Writer
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	// closeGracefully ends the connection after the last response was
	// written: the peer reads every response, then EOF. Called only by the
	// writer, after the reader has returned, and never after abort.
	closeGracefully() error
	// abort tears the connection down in both directions and unblocks a
	// Read or Write in progress. Safe concurrently with Read and Write.
	abort()
}

// connOptions is the resolved per-connection configuration of a listener.
type connOptions struct {
	listener    string
	handler     Handler
	maxFrame    int
	maxInFlight int
	idle        time.Duration
	onConnect   func(*ConnInfo)
	log         zerolog.Logger

	maxPreAuthFrame  int
	maxConnsPerIP    int
	maxStreams       int
	handshakeTimeout time.Duration
	frameTimeout     time.Duration
	writeTimeout     time.Duration
	minRate          int
	onLimit          func(string)
	limitLog         zerolog.Logger // sampled: for lines a flood of clients could repeat
}

type servedConn struct {
	fc   frameConn
	info *ConnInfo
	opts *connOptions
	log  zerolog.Logger

	// slots bounds the requests between "read" and "response written":
	// the reader takes a slot before it reads a frame, the writer returns
	// it after the response. A full slots blocks the reader, which leaves
	// the bytes in the socket or stream and so pushes back on the client.
	slots chan struct{}
	// queue carries Responders in request order. Its capacity equals
	// slots', so a reader holding a slot never blocks on it.
	queue chan Responder

	cancel context.CancelCauseFunc
	// broken is set when writing failed: nothing more can be sent, not
	// even a graceful close.
	broken atomic.Bool

	// lastResponse is when the writer last finished a Responder (unix
	// nanoseconds): the idle time is counted from it.
	lastResponse atomic.Int64
	// deadlineSet: the reader left a read deadline set (reader only).
	deadlineSet bool
}

// serveConn serves one Kafka connection and returns after both its
// goroutines have ended and fc is closed. The calling goroutine is the
// writer. How it ends:
//   - the peer ends its side (EOF between frames) or the connection is
//     idle: pending Responders finish, their responses are written, then
//     fc is closed gracefully;
//   - a Responder fails or the request stream is malformed: reading stops,
//     pending Responders are cancelled, the responses written so far are
//     delivered and fc is closed gracefully;
//   - writing fails or parent ends (shutdown, the peer stopped reading):
//     fc is aborted at once and pending Responders are cancelled.
func serveConn(parent context.Context, fc frameConn, info *ConnInfo, opts *connOptions) {
	c := &servedConn{
		fc:    fc,
		info:  info,
		opts:  opts,
		log:   opts.log.With().Uint64("conn", info.ID).Stringer("remote", info.RemoteAddr).Logger(),
		slots: make(chan struct{}, opts.maxInFlight),
		queue: make(chan Responder, opts.maxInFlight),
	}
	if opts.onConnect != nil {
		opts.onConnect(info)
	}
	ctx, cancel := context.WithCancelCause(parent)
	c.cancel = cancel
	defer cancel(nil)
	stopAbort := context.AfterFunc(parent, fc.abort)

	readerDone := make(chan error, 1)
	go func() { readerDone <- c.readLoop(ctx) }()
	werr := c.writeLoop(ctx)
	rerr := <-readerDone

	if !stopAbort() || c.broken.Load() {
		c.log.Debug().Err(context.Cause(ctx)).Msg("connection aborted")
		return
	}
	if err := fc.closeGracefully(); err != nil {
		c.log.Debug().Err(err).Msg("close connection")
	}
	reason := rerr
	if werr != nil {
		reason = werr
	}
	c.log.Debug().AnErr("reason", reason).Msg("connection closed")
}

// stop ends the connection for err without tearing it down: it cancels
// the Responders and stops the reader, and the writer then closes the
// connection gracefully. The first cause wins.
func (c *servedConn) stop(err error) {
	c.cancel(err)
	// A deadline in the past unblocks a Read in progress and leaves the
	// send side alone. The reader checks ctx after every deadline it sets
	// itself, so it cannot undo this one unnoticed.
	_ = c.fc.SetReadDeadline(time.Now())
}

// fail ends the connection for a write error: the connection is unusable,
// so it is aborted at once.
func (c *servedConn) fail(err error) {
	c.broken.Store(true)
	c.cancel(err)
	c.fc.abort()
}

func (c *servedConn) readLoop(ctx context.Context) error {
	defer close(c.queue)
	br := bufio.NewReaderSize(c.fc, readBufferBytes)
	var buf []byte
	for {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := c.awaitRequest(ctx, br); err != nil {
			return c.readFailed(ctx, err)
		}
		if err := c.startFrameDeadline(ctx, br); err != nil {
			return c.readFailed(ctx, err)
		}
		limit, preAuth := c.frameLimit()
		frame, err := ReadFrame(br, buf, limit)
		if tooLarge, ok := errors.AsType[*FrameTooLargeError](err); ok {
			if preAuth {
				return c.readFailed(ctx, c.preAuthTooLarge(tooLarge))
			}
			if err := c.serveOversized(ctx, br, buf, tooLarge.Size); err != nil {
				return c.readFailed(ctx, c.frameErr(ctx, err))
			}
			continue
		}
		if err != nil {
			return c.readFailed(ctx, c.frameErr(ctx, err))
		}
		c.queue <- c.opts.handler.ServeFrame(ctx, c.info, frame)
		if cap(frame) <= maxRetainedFrameBytes {
			buf = frame[:0]
		} else {
			buf = nil
		}
	}
}

// readFailed classifies how reading ended: a clean end (EOF between
// frames, idle) lets pending responses finish; anything else stops the
// connection.
func (c *servedConn) readFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // stopped on purpose; err is the symptom
	}
	if err == io.EOF || err == errIdle {
		return err
	}
	err = fmt.Errorf("transport: read request: %w", err)
	c.stop(err)
	return err
}

// setReadDeadline sets a deadline of the reader's own and then reports
// whether the connection was stopped, whose deadline it may have replaced.
func (c *servedConn) setReadDeadline(ctx context.Context, t time.Time) error {
	if err := c.fc.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return context.Cause(ctx)
}

// awaitRequest waits for the first byte of the next request. Only this
// wait is subject to the idle timeout: a connection with responses still
// pending (a long-poll fetch) is busy, not idle. It leaves a deadline
// set; startFrameDeadline replaces it.
func (c *servedConn) awaitRequest(ctx context.Context, br *bufio.Reader) error {
	if br.Buffered() > 0 {
		return nil
	}
	if c.opts.idle <= 0 {
		// The previous frame's deadline must not cut this wait short.
		if c.deadlineSet {
			if err := c.setReadDeadline(ctx, time.Time{}); err != nil {
				return err
			}
			c.deadlineSet = false
		}
		_, err := br.Peek(1)
		return err
	}
	idleSince := time.Now()
	c.deadlineSet = true
	for {
		if err := c.setReadDeadline(ctx, idleSince.Add(c.opts.idle)); err != nil {
			return err
		}
		_, err := br.Peek(1)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			return err
		}
		// Our own slot is the one held for the request we are waiting for;
		// any other is a response still pending.
		if len(c.slots) > 1 {
			idleSince = time.Now()
			continue
		}
		if last := time.Unix(0, c.lastResponse.Load()); last.After(idleSince) {
			idleSince = last
			continue
		}
		c.opts.limitHit(LimitIdleTimeout)
		return errIdle
	}
}

// startFrameDeadline gives the request whose first byte has arrived
// FrameTimeout plus its size at MinTransferRate to arrive in full (the
// length prefix has FrameTimeout alone). A frame already buffered in full
// needs no deadline: reading it cannot block. One deadline is set when
// the length prefix is already buffered, as it usually is.
func (c *servedConn) startFrameDeadline(ctx context.Context, br *bufio.Reader) error {
	start := time.Now()
	if br.Buffered() < FrameHeaderLen {
		c.deadlineSet = true
		if err := c.setReadDeadline(ctx, start.Add(c.opts.frameTimeout)); err != nil {
			return err
		}
	}
	hdr, err := br.Peek(FrameHeaderLen)
	if err != nil {
		return c.frameErr(ctx, noEOF(err))
	}
	size := int(int32(binary.BigEndian.Uint32(hdr)))
	if size >= 0 && size <= br.Buffered()-FrameHeaderLen {
		return nil
	}
	c.deadlineSet = true
	return c.setReadDeadline(ctx, start.Add(c.opts.frameTimeout+transferTime(size, c.opts.minRate)))
}

// frameLimit is the size limit for the next frame, and whether it is the
// pre-authentication one.
func (c *servedConn) frameLimit() (int, bool) {
	if _, ok := c.info.Principal(); ok || c.opts.maxPreAuthFrame >= c.opts.maxFrame {
		return c.opts.maxFrame, false
	}
	return c.opts.maxPreAuthFrame, true
}

// preAuthTooLarge ends a connection that sent a large frame before
// authenticating. Unlike an authenticated client's oversized request it
// gets no answer: the frame is not read, so nothing is buffered for it.
func (c *servedConn) preAuthTooLarge(e *FrameTooLargeError) error {
	c.opts.limitHit(LimitPreAuthFrame)
	c.opts.limitLog.Warn().Uint64("conn", c.info.ID).Stringer("remote", c.info.RemoteAddr).
		Int("frame_bytes", e.Size).Int("limit", e.Limit).
		Msg("closing connection: request frame before authentication exceeds limits.max_pre_auth_frame_bytes")
	return fmt.Errorf("unauthenticated client sent a frame of %d bytes, over the limit of %d: %w", e.Size, e.Limit, e)
}

// frameErr turns a read deadline that expired inside a frame into the
// frame timeout it is, logging it; other errors pass unchanged.
func (c *servedConn) frameErr(ctx context.Context, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
		return err
	}
	c.opts.limitHit(LimitFrameTimeout)
	c.opts.limitLog.Warn().Uint64("conn", c.info.ID).Stringer("remote", c.info.RemoteAddr).
		Dur("frame_timeout", c.opts.frameTimeout).
		Msg("closing connection: request frame not received in time (slow or stalled client; limits.frame_timeout)")
	return fmt.Errorf("request frame not received within limits.frame_timeout: %w", err)
}

func (c *servedConn) serveOversized(ctx context.Context, br *bufio.Reader, buf []byte, size int) error {
	head, err := readBody(br, buf, min(size, OversizedHeadBytes))
	if err != nil {
		return err
	}
	c.queue <- c.opts.handler.ServeOversized(ctx, c.info, head, size)
	// Discard after queueing, so an error response (or the Responder's
	// error closing the connection) does not wait for the whole body.
	rest := int64(size - len(head))
	if n, err := io.CopyN(io.Discard, br, rest); err != nil {
		return fmt.Errorf("discard %d of %d bytes of oversized frame: %w", rest-n, size, noEOF(err))
	}
	return nil
}

// writeLoop calls the Responders in order and writes their responses.
// After a failure it keeps calling the remaining Responders, with the
// cancelled ctx, so that each is still called exactly once.
func (c *servedConn) writeLoop(ctx context.Context) error {
	bw := bufio.NewWriterSize(c.fc, writeBufferBytes)
	var werr error
	for resp := range c.queue {
		if werr == nil && ctx.Err() == nil {
			werr = c.respond(ctx, bw, resp)
		} else if resp != nil {
			_, _ = resp(ctx)
		}
		if c.opts.idle > 0 {
			c.lastResponse.Store(time.Now().UnixNano())
		}
		<-c.slots
	}
	return werr
}

func (c *servedConn) respond(ctx context.Context, bw *bufio.Writer, resp Responder) error {
	if resp == nil {
		return nil
	}
	payload, err := resp(ctx)
	closeAfter := payload != nil && errors.Is(err, ErrCloseAfterResponse)
	if closeAfter {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("transport: respond: %w", err)
		if ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("closing connection: request failed")
		}
		c.stop(err)
		return err
	}
	if payload == nil {
		return nil
	}
	d := time.Now().Add(c.opts.writeTimeout + transferTime(len(payload), c.opts.minRate))
	if err := c.fc.SetWriteDeadline(d); err != nil {
		err = fmt.Errorf("transport: set write deadline: %w", err)
		c.fail(err)
		return err
	}
	if err := WriteFrame(bw, payload); err != nil {
		err = c.writeErr(ctx, err)
		if errors.Is(err, ErrFrameTooLong) {
			c.stop(err) // nothing was written: the connection is intact
		} else {
			c.fail(err)
		}
		return err
	}
	// Flush each response rather than only when the queue is empty: the
	// next Responder may block (a long-poll fetch) and must not hold back
	// a response that is ready. The buffer still joins prefix and payload
	// into one write for small responses.
	if err := bw.Flush(); err != nil {
		err = c.writeErr(ctx, err)
		c.fail(err)
		return err
	}
	if closeAfter {
		c.stop(ErrCloseAfterResponse)
		return ErrCloseAfterResponse
	}
	return nil
}

// writeErr wraps a write error, logging an expired write deadline that the
// connection's stop did not cause.
func (c *servedConn) writeErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
		c.opts.limitHit(LimitWriteTimeout)
		c.opts.limitLog.Warn().Uint64("conn", c.info.ID).Stringer("remote", c.info.RemoteAddr).
			Dur("write_timeout", c.opts.writeTimeout).
			Msg("closing connection: client does not read its responses (limits.write_timeout)")
		return fmt.Errorf("transport: write response: client stopped reading (limits.write_timeout): %w", err)
	}
	return fmt.Errorf("transport: write response: %w", err)
}
