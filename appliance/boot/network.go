//go:build linux

package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"

	"github.com/eddybroker/eddy/appliance/device"
)

// configureNetwork brings up loopback and the configured interface.
func configureNetwork(ctx context.Context, log zerolog.Logger, n device.NetworkConfig) error {
	start := time.Now()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
	var link netlink.Link
	for {
		var err error
		if link, err = netlink.LinkByName(n.Interface); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			return fmt.Errorf("interface %s did not appear (is its driver in kernel.modules?): %w", n.Interface, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", n.Interface, err)
	}
	if n.DHCP {
		return errors.New("DHCP is not in this build yet; set network.address (and gateway) in the device config")
	}
	p, err := netip.ParsePrefix(n.Address)
	if err != nil {
		return fmt.Errorf("network.address: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", n.Address, n.Interface, err)
	}
	if n.Gateway != "" {
		gw := net.ParseIP(n.Gateway)
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	if len(n.DNS) > 0 {
		var b strings.Builder
		for _, s := range n.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if err := os.WriteFile("/etc/resolv.conf", []byte(b.String()), 0o644); err != nil {
			log.Warn().Err(err).Msg("resolv.conf")
		}
	}
	if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n"+p.Addr().String()+" "+hostname()+"\n"), 0o644); err != nil {
		log.Warn().Err(err).Msg("hosts")
	}
	log.Info().Str("interface", n.Interface).Str("address", n.Address).Str("gateway", n.Gateway).Dur("took", time.Since(start)).Msg("network up")
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// setClock is not implemented yet: it logs what it would use.
func setClock(_ context.Context, log zerolog.Logger, servers []string) {
	log.Warn().Strs("ntp", servers).Msg("NTP is not in this build yet; the clock stays as the hardware has it")
}
