package netlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the switch does to packets going one way between two
// addresses. The zero Fault passes everything at once.
type Fault struct {
	Drop   bool          // drop every packet: a partition in this direction
	Loss   float64       // share of packets dropped at random, 0..1
	Delay  time.Duration // added to every packet
	Jitter time.Duration // up to this much more, at random, in order
}

func (f Fault) zero() bool { return f == Fault{} }

// Port is one namespace on the switch.
type Port struct {
	NS   string // network namespace; "" is the switch process's own
	Dev  string
	Addr netip.Addr

	tun *os.File
	out chan delayedPacket
}

type delayedPacket struct {
	at  time.Time
	pkt []byte
}

type pair struct{ from, to netip.Addr }

// Switch joins ports; it is safe for concurrent use.
type Switch struct {
	prefix netip.Prefix

	mu     sync.RWMutex
	ports  map[netip.Addr]*Port
	faults map[pair]Fault
	ownNS  []string

	stop chan struct{}
	wg   sync.WaitGroup

	Passed, Dropped atomic.Int64
}

// NewSwitch returns a switch for addresses in prefix (e.g. 10.88.0.0/24).
func NewSwitch(prefix netip.Prefix) *Switch {
	return &Switch{prefix: prefix, ports: map[netip.Addr]*Port{}, faults: map[pair]Fault{}, stop: make(chan struct{})}
}

// AddNamespace creates network namespace ns with loopback up and plugs it
// into the switch at addr. The switch deletes it on Close.
func (s *Switch) AddNamespace(ctx context.Context, ns string, addr netip.Addr) error {
	_ = exec.CommandContext(ctx, "ip", "netns", "del", ns).Run() // a leftover from a killed run
	if err := IP(ctx, "netns", "add", ns); err != nil {
		return err
	}
	s.mu.Lock()
	s.ownNS = append(s.ownNS, ns)
	s.mu.Unlock()
	if err := IP(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	return s.AddPort(ctx, ns, "eth0", addr)
}

// AddPort plugs a TUN device named dev in namespace ns ("" for this
// process's) into the switch with address addr.
func (s *Switch) AddPort(ctx context.Context, ns, dev string, addr netip.Addr) error {
	if !s.prefix.Contains(addr) {
		return fmt.Errorf("netlab: %s is outside the switch's %s", addr, s.prefix)
	}
	tun, err := OpenTUN(ns, dev)
	if err != nil {
		return err
	}
	ipArgs := func(args ...string) []string {
		if ns == "" {
			return args
		}
		return append([]string{"-n", ns}, args...)
	}
	cidr := fmt.Sprintf("%s/%d", addr, s.prefix.Bits())
	for _, args := range [][]string{
		ipArgs("addr", "add", cidr, "dev", dev),
		ipArgs("link", "set", dev, "mtu", "1500", "up"),
	} {
		if err := IP(ctx, args...); err != nil {
			tun.Close()
			return err
		}
	}
	p := &Port{NS: ns, Dev: dev, Addr: addr, tun: tun, out: make(chan delayedPacket, 1<<14)}
	s.mu.Lock()
	s.ports[addr] = p
	s.mu.Unlock()
	s.wg.Add(2)
	go s.read(p)
	go s.write(p)
	return nil
}

// SetFault sets what happens to packets from one address to another.
func (s *Switch) SetFault(from, to netip.Addr, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.zero() {
		delete(s.faults, pair{from, to})
		return
	}
	s.faults[pair{from, to}] = f
}

// Heal removes every fault.
func (s *Switch) Heal() {
	s.mu.Lock()
	s.faults = map[pair]Fault{}
	s.mu.Unlock()
}

// Close stops the switch, closes its devices and deletes the namespaces
// it created.
func (s *Switch) Close() {
	select {
	case <-s.stop:
		return
	default:
		close(s.stop)
	}
	s.mu.Lock()
	for _, p := range s.ports {
		p.tun.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, ns := range s.ownNS {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// read routes the packets one port sends by their IPv4 destination.
func (s *Switch) read(p *Port) {
	defer s.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(p.Addr.As4()[3])))
	buf := make([]byte, 1<<16)
	for {
		n, err := p.tun.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			select {
			case <-s.stop:
				return
			default:
				continue
			}
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue // not IPv4: the kernel's router solicitations and the like
		}
		src := netip.AddrFrom4([4]byte(buf[12:16]))
		dst := netip.AddrFrom4([4]byte(buf[16:20]))
		s.mu.RLock()
		to := s.ports[dst]
		f := s.faults[pair{src, dst}]
		s.mu.RUnlock()
		if to == nil || f.Drop || (f.Loss > 0 && rng.Float64() < f.Loss) {
			s.Dropped.Add(1)
			continue
		}
		at := time.Now()
		if f.Delay > 0 || f.Jitter > 0 {
			at = at.Add(f.Delay)
			if f.Jitter > 0 {
				at = at.Add(time.Duration(rng.Int64N(int64(f.Jitter))))
			}
		}
		select {
		case to.out <- delayedPacket{at: at, pkt: append([]byte(nil), buf[:n]...)}:
			s.Passed.Add(1)
		default:
			s.Dropped.Add(1) // the port's queue is full: a tail drop
		}
	}
}

// write delivers a port's packets in arrival order, each no earlier than
// its time: a FIFO keeps jitter from reordering, as on a wire.
func (s *Switch) write(p *Port) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var d delayedPacket
		select {
		case d = <-p.out:
		case <-s.stop:
			return
		}
		if wait := time.Until(d.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-s.stop:
				return
			}
		}
		_, _ = p.tun.Write(d.pkt) // a packet the kernel refuses is a lost packet
	}
}
