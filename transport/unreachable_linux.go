//go:build linux

package transport

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unreachableConn is the dialer's UDP socket with ICMP errors turned on.
//
// quic-go cannot see ICMP "port unreachable": on an unconnected UDP socket
// Linux drops it. So a QUIC client whose broker died waits for handshake
// and idle timeouts (seconds to a minute) where a TCP client gets
// "connection refused" at once. With IP_RECVERR the kernel queues those
// errors; the next read or write on the socket fails with
// ECONNREFUSED, and the error queue says which destination caused it. The
// dialer then fails that broker's connection and handshakes immediately.
//
// The type deliberately does not offer ReadMsgUDP/WriteMsgUDP: quic-go
// then reads and writes through ReadFrom/WriteTo (no batching or GSO on
// the client), which is where the errors can be caught. quic-go would
// otherwise treat ECONNREFUSED from a batched read as fatal for the whole
// socket.
type unreachableConn struct {
	udp           *net.UDPConn
	raw           syscall.RawConn
	onUnreachable func(netip.AddrPort)
	errBuf, oob   []byte
}

// wrapUnreachable enables ICMP error reporting on udp. It returns udp
// itself when the socket refuses (then failures surface as timeouts, as
// before).
func wrapUnreachable(udp *net.UDPConn, onUnreachable func(netip.AddrPort)) net.PacketConn {
	raw, err := udp.SyscallConn()
	if err != nil {
		return udp
	}
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		// A dual-stack socket needs both: IPv4 destinations are v4-mapped.
		e4 := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		e6 := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		if e4 != nil && e6 != nil {
			sockErr = e4
		}
	})
	if err != nil || sockErr != nil {
		return udp
	}
	return &unreachableConn{udp: udp, raw: raw, onUnreachable: onUnreachable,
		errBuf: make([]byte, 256), oob: make([]byte, 512)}
}

func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// drainErrors reads the socket's error queue and reports each
// destination that could not be reached. The reading goroutine passes its
// own buffers; writers pass fresh ones.
func (c *unreachableConn) drainErrors(buf, oob []byte) {
	for {
		var from unix.Sockaddr
		var rerr error
		// Control, not Read: Read would wait for the fd's read lock, which
		// quic-go's reader holds while it blocks for the next packet. A
		// non-blocking recvmsg on the error queue needs no poller.
		err := c.raw.Control(func(fd uintptr) {
			_, _, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		})
		if err != nil || rerr != nil {
			return
		}
		// For an error queue message, the name is the destination of the
		// datagram that bounced.
		var ap netip.AddrPort
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *unix.SockaddrInet6:
			ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
		default:
			continue
		}
		c.onUnreachable(ap)
	}
}

func (c *unreachableConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.udp.ReadFrom(b)
		if err == nil || !isUnreachable(err) {
			return n, addr, err
		}
		c.drainErrors(c.errBuf, c.oob)
	}
}

func (c *unreachableConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.udp.WriteTo(b, addr)
	if err == nil || !isUnreachable(err) {
		return n, err
	}
	// The error belongs to an earlier datagram, possibly to another
	// destination: report it and send this one again.
	c.drainErrors(make([]byte, 256), make([]byte, 512))
	n, err = c.udp.WriteTo(b, addr)
	if err != nil && isUnreachable(err) {
		// Lost like any datagram; QUIC retransmits if it matters.
		return len(b), nil
	}
	return n, err
}

func (c *unreachableConn) Close() error                       { return c.udp.Close() }
func (c *unreachableConn) LocalAddr() net.Addr                { return c.udp.LocalAddr() }
func (c *unreachableConn) SetDeadline(t time.Time) error      { return c.udp.SetDeadline(t) }
func (c *unreachableConn) SetReadDeadline(t time.Time) error  { return c.udp.SetReadDeadline(t) }
func (c *unreachableConn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }
func (c *unreachableConn) SetReadBuffer(n int) error          { return c.udp.SetReadBuffer(n) }
func (c *unreachableConn) SetWriteBuffer(n int) error         { return c.udp.SetWriteBuffer(n) }

// SyscallConn lets quic-go size the buffers and set don't-fragment.
func (c *unreachableConn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }
