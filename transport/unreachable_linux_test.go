//go:build linux

package transport

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUnreachableReported: a datagram to a closed UDP port is reported
// with its destination, and the socket keeps working.
func TestUnreachableReported(t *testing.T) {
	closed, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := closed.LocalAddr().(*net.UDPAddr)
	closed.Close()
	alive, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()

	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan netip.AddrPort, 4)
	c := wrapUnreachable(udp, func(ap netip.AddrPort) { got <- ap })
	defer c.Close()
	if _, ok := c.(*unreachableConn); !ok {
		t.Fatal("IP_RECVERR could not be enabled")
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	if _, err := c.WriteTo([]byte("hello?"), dead); err != nil {
		t.Fatal(err)
	}
	select {
	case ap := <-got:
		if ap != dead.AddrPort() {
			t.Fatalf("reported %v, want %v", ap, dead.AddrPort())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unreachable port was not reported")
	}
	// The socket still delivers to a live peer.
	if _, err := c.WriteTo([]byte("hi"), alive.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	alive.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, _, err := alive.ReadFrom(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("live peer got %q, %v", buf[:n], err)
	}
}
