package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eddybroker/eddy/chaos/netlab"
)

// Ports every node listens on, at its own address.
const (
	kafkaPort = 9092 // QUIC (UDP) and Kafka TCP
	adminPort = 9644
	raftPort  = 7100
)

// node is one `eddy serve` process in its own namespace.
type node struct {
	id      int
	ns      string
	addr    netip.Addr
	dataDir string
	config  string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool
	starts  int
	crashes []string // exits nobody asked for
}

// cluster is three eddy processes on a switch, plus a port for the
// harness's clients in its own namespace.
type cluster struct {
	bin    string
	dir    string
	sw     *netlab.Switch
	nodes  []*node
	client netip.Addr
}

// startCluster builds the network, writes each node's config and starts
// the processes. The caller closes the cluster.
func startCluster(ctx context.Context, bin, dir string, n int) (_ *cluster, err error) {
	if err := netlab.CheckPrerequisites(); err != nil {
		return nil, err
	}
	// A subnet per run, so a leftover route from a killed run cannot
	// capture this one's traffic.
	pid := os.Getpid()
	third := byte(20 + pid%200)
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 88, third, 0}), 24)
	c := &cluster{bin: bin, dir: dir, sw: netlab.NewSwitch(prefix), client: netip.AddrFrom4([4]byte{10, 88, third, 100})}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if err := c.sw.AddPort(ctx, "", fmt.Sprintf("ec%d", pid%100000), c.client); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		nd := &node{
			id:      i,
			ns:      fmt.Sprintf("eddy-chaos-%d-n%d", pid, i),
			addr:    netip.AddrFrom4([4]byte{10, 88, third, byte(i)}),
			dataDir: filepath.Join(dir, fmt.Sprintf("node%d", i)),
			config:  filepath.Join(dir, fmt.Sprintf("node%d.yaml", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i)),
		}
		if err := c.sw.AddNamespace(ctx, nd.ns, nd.addr); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(nd.config, []byte(c.nodeConfig(nd)), 0o600); err != nil {
			return nil, fmt.Errorf("chaos: write %s: %w", nd.config, err)
		}
	}
	for _, nd := range c.nodes {
		if err := c.start(nd); err != nil {
			return nil, err
		}
	}
	// Every node derives the cluster CA from cluster_secret and writes it
	// at start; QUIC clients need it.
	for {
		if _, err := os.Stat(c.caFile()); err == nil {
			return c, nil
		}
		if cr := c.crashes(); len(cr) > 0 {
			return nil, fmt.Errorf("chaos: a node did not start: %v", cr)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("chaos: waiting for %s: %w", c.caFile(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) nodeConfig(nd *node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node_id: %d\ndata_dir: %s\n", nd.id, nd.dataDir)
	fmt.Fprintf(&b, "listen:\n  quic: %s:%d\n  kafka: %s:%d\n  admin: %s:%d\n  raft: %s:%d\n",
		nd.addr, kafkaPort, nd.addr, kafkaPort, nd.addr, adminPort, nd.addr, raftPort)
	b.WriteString("initial_cluster:\n")
	for _, o := range c.nodes {
		fmt.Fprintf(&b, "  %d: %s:%d\n", o.id, o.addr, raftPort)
	}
	// Lab only: plaintext Kafka TCP beyond loopback, inside namespaces
	// nothing else can reach.
	b.WriteString("cluster_secret: 6368616f732d6861726e6573732d3031\ninsecure: true\n")
	b.WriteString("topics:\n  default_replication_factor: 3\n  default_partitions: 6\n")
	// Frequent snapshots, so restarted and partitioned replicas also
	// catch up from streamed snapshots, not only from the Raft log.
	b.WriteString("raft:\n  snapshot_entries: 200\n")
	b.WriteString("log:\n  level: info\n  format: json\n")
	return b.String()
}

func (c *cluster) brokers() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, fmt.Sprintf("%s:%d", nd.addr, kafkaPort))
	}
	return out
}

func (c *cluster) caFile() string { return filepath.Join(c.nodes[0].dataDir, "tls", "ca.crt") }

// start launches a node's process in its namespace; its output is
// appended to the node's log file.
func (c *cluster) start(nd *node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	// ip netns exec execs eddy in place, so the pid is eddy's own and
	// signals reach it directly.
	cmd := exec.Command("ip", "netns", "exec", nd.ns, c.bin, "serve", "--config", nd.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("chaos: start node %d: %w", nd.id, err)
	}
	nd.cmd, nd.exited, nd.paused = cmd, make(chan struct{}), false
	nd.starts++
	exited := nd.exited
	go func() {
		err := cmd.Wait()
		logf.Close()
		nd.mu.Lock()
		if nd.cmd == cmd {
			// Nobody stopped it: a crash the checker must report.
			nd.crashes = append(nd.crashes, fmt.Sprintf("%s: %v (see %s)", time.Now().Format(time.TimeOnly), err, nd.logPath))
			nd.cmd = nil
		}
		nd.mu.Unlock()
		close(exited)
	}()
	return nil
}

// signalStop sends sig to a running node and waits for it to exit.
func (c *cluster) signalStop(ctx context.Context, nd *node, sig syscall.Signal) error {
	nd.mu.Lock()
	cmd, exited, paused := nd.cmd, nd.exited, nd.paused
	nd.cmd = nil
	nd.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: signal node %d: %w", nd.id, err)
	}
	if paused && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("chaos: node %d did not stop on %v: %w", nd.id, sig, ctx.Err())
	}
}

func (c *cluster) kill(ctx context.Context, nd *node) error {
	return c.signalStop(ctx, nd, syscall.SIGKILL)
}

// stop shuts a node down cleanly, with a deadline after which it is killed.
func (c *cluster) stop(ctx context.Context, nd *node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.signalStop(ctx, nd, syscall.SIGTERM)
}

func (c *cluster) pause(nd *node, on bool) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil || nd.paused == on {
		return nil
	}
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if err := nd.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: pause node %d: %w", nd.id, err)
	}
	nd.paused = on
	return nil
}

func (c *cluster) running(nd *node) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// partition drops every packet between the groups, both ways; clients
// still reach every node.
func (c *cluster) partition(groups ...[]*node) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					c.sw.SetFault(a.addr, b.addr, netlab.Fault{Drop: true})
				}
			}
		}
	}
}

// degrade sets f on every link between nodes and between nodes and clients.
func (c *cluster) degrade(f netlab.Fault) {
	addrs := []netip.Addr{c.client}
	for _, nd := range c.nodes {
		addrs = append(addrs, nd.addr)
	}
	for _, a := range addrs {
		for _, b := range addrs {
			if a != b {
				c.sw.SetFault(a, b, f)
			}
		}
	}
}

func (c *cluster) heal() { c.sw.Heal() }

// close kills every process and tears the network down.
func (c *cluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range c.nodes {
		_ = c.kill(ctx, nd)
	}
	c.sw.Close()
}

// crashes lists the exits nobody asked for.
func (c *cluster) crashes() []string {
	var out []string
	for _, nd := range c.nodes {
		nd.mu.Lock()
		for _, cr := range nd.crashes {
			out = append(out, fmt.Sprintf("node %d exited by itself at %s", nd.id, cr))
		}
		nd.mu.Unlock()
	}
	return out
}
