package netlab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a TCP echo server inside a
// namespace: `ip netns exec NS <test binary>` with NETLAB_ECHO=addr.
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETLAB_ECHO"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					fmt.Fprintf(c, "%s\n", s.Text())
				}
			}()
		}
	}
	os.Exit(m.Run())
}

func TestSwitchFaults(t *testing.T) {
	if err := CheckPrerequisites(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sw := NewSwitch(netip.MustParsePrefix("10.89.7.0/24"))
	defer sw.Close()
	local, remote := netip.MustParseAddr("10.89.7.100"), netip.MustParseAddr("10.89.7.1")
	if err := sw.AddPort(ctx, "", fmt.Sprintf("nlt%d", os.Getpid()%100000), local); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("netlab-test-%d", os.Getpid())
	if err := sw.AddNamespace(ctx, ns, remote); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	srv.Env = append(os.Environ(), "NETLAB_ECHO="+remote.String()+":7000")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("echo server: %q %v", line, err)
	}
	rtt := func() (time.Duration, error) {
		c, err := net.DialTimeout("tcp", remote.String()+":7000", time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		r := bufio.NewReader(c)
		start := time.Now()
		fmt.Fprintln(c, "ping")
		if _, err := r.ReadString('\n'); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	base, err := rtt()
	if err != nil {
		t.Fatalf("through the switch: %v", err)
	}
	sw.SetFault(local, remote, Fault{Delay: 100 * time.Millisecond})
	slow, err := rtt()
	if err != nil || slow < 100*time.Millisecond {
		t.Fatalf("with 100ms delay one way: rtt %s (base %s), %v", slow, base, err)
	}
	sw.SetFault(remote, local, Fault{Drop: true}) // replies never come back
	if _, err := rtt(); err == nil {
		t.Fatal("a one-way partition let a connection through")
	}
	sw.Heal()
	if _, err := rtt(); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	t.Logf("rtt %s, with 100ms one-way delay %s", base, slow)
}
