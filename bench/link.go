package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddybroker/eddy/chaos/netlab"
)

// Addresses of the two ends of a lossy link.
const (
	LinkServerIP = "10.77.0.1"
	LinkClientIP = "10.77.0.2"
)

// Link is a lossy link between two network namespaces, made in user space:
// each namespace has a TUN device and this process moves IP packets
// between them, dropping a share and delaying the rest. The kernel's
// netem would do the same, but kernels without the sch_netem module (this
// machine's) cannot; a user-space link works wherever TUN does.
type Link struct {
	ClientNS, ServerNS string
	spec               LinkSpec

	files   []*os.File
	wg      sync.WaitGroup
	stop    chan struct{}
	dropped atomic.Int64
	passed  atomic.Int64
}

// StartLink creates two network namespaces joined by a link with spec's
// delay (each way) and loss (each way, in percent). It needs root, ip and
// /dev/net/tun.
func StartLink(ctx context.Context, spec LinkSpec) (*Link, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a lossy link needs root: it creates network namespaces and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("a lossy link needs the ip command (Debian: iproute2): %w", err)
	}
	id := fmt.Sprintf("%d", os.Getpid())
	l := &Link{ClientNS: "eddy-bench-cli-" + id, ServerNS: "eddy-bench-srv-" + id, spec: spec, stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	for _, ns := range []string{l.ClientNS, l.ServerNS} {
		if err := netlab.IP(ctx, "netns", "add", ns); err != nil {
			return nil, err
		}
		if err := netlab.IP(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	cli, err := netlab.OpenTUN(l.ClientNS, "ebl0")
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, cli)
	srv, err := netlab.OpenTUN(l.ServerNS, "ebl0")
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, srv)
	for _, c := range []struct{ ns, local, peer string }{
		{l.ClientNS, LinkClientIP, LinkServerIP},
		{l.ServerNS, LinkServerIP, LinkClientIP},
	} {
		if err := netlab.IP(ctx, "-n", c.ns, "addr", "add", c.local, "peer", c.peer, "dev", "ebl0"); err != nil {
			return nil, err
		}
		if err := netlab.IP(ctx, "-n", c.ns, "link", "set", "ebl0", "mtu", "1500", "up"); err != nil {
			return nil, err
		}
	}
	l.wg.Add(2)
	go l.forward(cli, srv)
	go l.forward(srv, cli)
	ok = true
	return l, nil
}

// Stats returns how many packets crossed the link and how many it dropped.
func (l *Link) Stats() (passed, dropped int64) { return l.passed.Load(), l.dropped.Load() }

// Close stops the link and deletes the namespaces.
func (l *Link) Close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	for _, f := range l.files {
		f.Close()
	}
	l.wg.Wait()
	for _, ns := range []string{l.ClientNS, l.ServerNS} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

type delayed struct {
	at  time.Time
	pkt []byte
}

// forward moves packets from one TUN to the other. The delay is the same
// for every packet, so a FIFO keeps them in order, as a wire would.
func (l *Link) forward(from, to *os.File) {
	defer l.wg.Done()
	queue := make(chan delayed, 1<<16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for d := range queue {
			if wait := time.Until(d.at); wait > 0 {
				select {
				case <-time.After(wait):
				case <-l.stop:
					return
				}
			}
			if _, err := to.Write(d.pkt); err != nil && !errors.Is(err, os.ErrClosed) {
				continue // a packet the kernel refused is a lost packet
			}
		}
	}()
	defer func() { close(queue); wg.Wait() }()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	buf := make([]byte, 1<<16)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		if rng.Float64()*100 < l.spec.Loss {
			l.dropped.Add(1)
			continue
		}
		l.passed.Add(1)
		pkt := append([]byte(nil), buf[:n]...)
		select {
		case queue <- delayed{at: time.Now().Add(l.spec.Delay.D()), pkt: pkt}:
		default:
			l.dropped.Add(1) // the link's buffer is full: a tail drop
		}
	}
}
