package transport

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of the limits in ServerConfig.
const (
	// DefaultMaxPreAuthFrameBytes is Kafka's sasl.server.max.receive.size:
	// room for any SASL or ApiVersions request, far below what a client
	// could make the broker buffer otherwise.
	DefaultMaxPreAuthFrameBytes = 512 << 10
	// DefaultMaxConnsPerIP leaves room for a fleet of clients behind one
	// NAT address while keeping one address from using up the node's file
	// descriptors.
	DefaultMaxConnsPerIP = 512
	// DefaultMaxStreamsPerConn: a process's Kafka clients share one QUIC
	// connection per broker (QUICDialer), each client connection a stream.
	DefaultMaxStreamsPerConn = 1024
	// DefaultHandshakeTimeout bounds TLS and QUIC handshakes.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultFrameTimeout: a request that started arriving has this long,
	// plus its size at DefaultMinTransferRate, to finish.
	DefaultFrameTimeout = 30 * time.Second
	// DefaultWriteTimeout likewise for writing a response.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMinTransferRate is the slowest link the timeouts make room
	// for: 64 KiB/s gives a 1 MiB batch 16 s on top of the fixed part.
	DefaultMinTransferRate = 64 << 10
)

// Names of the limits a client can run into, passed to ServerConfig.OnLimit.
const (
	LimitPreAuthFrame     = "pre_auth_frame_bytes"
	LimitConnsPerIP       = "connections_per_ip"
	LimitHandshakeTimeout = "handshake_timeout"
	LimitFrameTimeout     = "frame_timeout"
	LimitWriteTimeout     = "write_timeout"
	LimitIdleTimeout      = "idle_timeout"
)

// transferTime is how long n bytes take at rate bytes per second.
func transferTime(n, rate int) time.Duration {
	if rate <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / int64(rate))
}

func (o *connOptions) limitHit(limit string) {
	if o.onLimit != nil {
		o.onLimit(limit)
	}
}

// ipLimiter counts a listener's connections per client IP address.
type ipLimiter struct {
	max    int
	mu     sync.Mutex
	counts map[netip.Addr]int
}

func newIPLimiter(maxPerIP int) *ipLimiter {
	return &ipLimiter{max: maxPerIP, counts: make(map[netip.Addr]int)}
}

// ipOf returns the IP of a TCP or UDP address (IPv4-mapped IPv6 addresses
// as IPv4, so a dual-stack socket counts one client once).
func ipOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// acquire takes a connection slot for ip and reports whether one was
// free, and how many ip holds now (or held, when refused).
func (l *ipLimiter) acquire(ip netip.Addr) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.counts[ip]
	if n >= l.max {
		return false, n
	}
	l.counts[ip] = n + 1
	return true, n + 1
}

func (l *ipLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.counts[ip]; n > 1 {
		l.counts[ip] = n - 1
	} else {
		delete(l.counts, ip)
	}
}

func (l *ipLimiter) count(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[ip]
}
