//go:build !linux

package transport

import (
	"net"
	"net/netip"
)

// wrapUnreachable: without Linux's IP_RECVERR, an unreachable broker shows
// up as a handshake or idle timeout.
func wrapUnreachable(udp *net.UDPConn, _ func(netip.AddrPort)) net.PacketConn { return udp }
