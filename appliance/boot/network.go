//go:build linux

package boot

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
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
		return runDHCP(ctx, log, link, n, start)
	}
	p, err := netip.ParsePrefix(n.Address)
	if err != nil {
		return fmt.Errorf("network.address: %w", err)
	}
	var gw net.IP
	if n.Gateway != "" {
		gw = net.ParseIP(n.Gateway)
	}
	var dns []net.IP
	for _, s := range n.DNS {
		dns = append(dns, net.ParseIP(s))
	}
	if err := applyAddress(log, link, n, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, gw, dns); err != nil {
		return err
	}
	log.Info().Str("interface", n.Interface).Str("address", n.Address).Str("gateway", n.Gateway).Dur("took", time.Since(start)).Msg("network up")
	return nil
}

// applyAddress puts an address on the link, the default route via gw (if
// any) and the DNS servers into /etc/resolv.conf.
func applyAddress(log zerolog.Logger, link netlink.Link, n device.NetworkConfig, ipnet *net.IPNet, gw net.IP, dns []net.IP) error {
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ipnet, n.Interface, err)
	}
	if gw != nil {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	if len(dns) > 0 {
		var b strings.Builder
		for _, s := range dns {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if err := os.WriteFile("/etc/resolv.conf", []byte(b.String()), 0o644); err != nil {
			log.Warn().Err(err).Msg("resolv.conf")
		}
	}
	if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n"+ipnet.IP.String()+" "+n.Hostname+"\n"), 0o644); err != nil {
		log.Warn().Err(err).Msg("hosts")
	}
	return nil
}

// runDHCP gets a lease (retrying until one comes, as a box without a
// network has nothing to serve), applies it, and keeps renewing it at
// half its lifetime until ctx ends.
func runDHCP(ctx context.Context, log zerolog.Logger, link netlink.Link, n device.NetworkConfig, start time.Time) error {
	client, err := nclient4.New(n.Interface, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return fmt.Errorf("dhcp on %s: %w", n.Interface, err)
	}
	hostname := dhcpv4.WithOption(dhcpv4.OptHostName(n.Hostname))
	var lease *nclient4.Lease
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		if lease, err = client.Request(ctx, hostname); err == nil {
			break
		}
		log.Warn().Err(err).Dur("retry_in", backoff).Msg("no DHCP lease yet")
		select {
		case <-ctx.Done():
			client.Close()
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	ipnet, err := applyLease(log, link, n, lease)
	if err != nil {
		client.Close()
		return err
	}
	log.Info().Str("interface", n.Interface).Str("address", ipnet.String()).Str("server", lease.ACK.ServerIPAddr.String()).
		Dur("lease", lease.ACK.IPAddressLeaseTime(time.Hour)).Dur("took", time.Since(start)).Msg("network up (DHCP)")
	go func() {
		defer client.Close()
		for {
			wait := lease.ACK.IPAddressLeaseTime(time.Hour) / 2
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			renewed, err := client.Renew(ctx, lease, hostname)
			if err != nil {
				// Keep the address; the next try comes sooner.
				log.Warn().Err(err).Msg("DHCP renew failed")
				lease.ACK.UpdateOption(dhcpv4.OptIPAddressLeaseTime(max(wait/2, time.Minute)))
				continue
			}
			lease = renewed
			if _, err := applyLease(log, link, n, lease); err != nil {
				log.Error().Err(err).Msg("applying the renewed DHCP lease")
			}
		}
	}()
	return nil
}

func applyLease(log zerolog.Logger, link netlink.Link, n device.NetworkConfig, lease *nclient4.Lease) (*net.IPNet, error) {
	ack := lease.ACK
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	ipnet := &net.IPNet{IP: ack.YourIPAddr.To4(), Mask: mask}
	var gw net.IP
	if r := ack.Router(); len(r) > 0 {
		gw = r[0]
	}
	if err := applyAddress(log, link, n, ipnet, gw, ack.DNS()); err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	return ipnet, nil
}
