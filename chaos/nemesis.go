package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/eddybroker/eddy/chaos/netlab"
	"github.com/eddybroker/eddy/sdk"
)

// Fault kinds the nemesis injects.
const (
	FaultKill          = "kill"           // kill -9 one node, restart it after the fault
	FaultPause         = "pause"          // SIGSTOP the leader of a partition, SIGCONT after
	FaultRestart       = "restart"        // stop one node cleanly and start it again
	FaultIsolateLeader = "isolate-leader" // cut a partition leader off from the other nodes
	FaultSplit         = "split"          // a random majority/minority split of the nodes
	FaultOneWay        = "one-way"        // drop everything one node sends to the others
	FaultLatency       = "latency"        // 50–150 ms on every link
	FaultLoss          = "loss"           // drop 10% of packets on every link
	FaultRestartAll    = "restart-all"    // kill -9 every node at once and start them all
)

// AllFaults lists every fault kind.
var AllFaults = []string{FaultKill, FaultPause, FaultRestart, FaultIsolateLeader, FaultSplit, FaultOneWay, FaultLatency, FaultLoss, FaultRestartAll}

// nemesis injects faults into a cluster and undoes them.
type nemesis struct {
	c   *cluster
	w   *workload
	rng *rand.Rand
	log func(string, ...any)
}

// leader returns the node leading a random partition of the test topic,
// or a random node when no leader is known (during a fault, say).
func (n *nemesis) leader(ctx context.Context) *node {
	cl, err := n.w.dial(ctx, sdk.TCP, "chaos-nemesis")
	if err == nil {
		defer cl.Close()
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		md, err := cl.Admin().Metadata(mctx, topic)
		cancel()
		if err == nil {
			if t, ok := md.Topics[topic]; ok && len(t.Partitions) > 0 {
				ps := t.Partitions.Sorted()
				p := ps[n.rng.IntN(len(ps))]
				for _, nd := range n.c.nodes {
					if int32(nd.id) == p.Leader {
						return nd
					}
				}
			}
		}
	}
	return n.c.nodes[n.rng.IntN(len(n.c.nodes))]
}

func (n *nemesis) others(x *node) []*node {
	var out []*node
	for _, nd := range n.c.nodes {
		if nd != x {
			out = append(out, nd)
		}
	}
	return out
}

// inject starts a fault and returns what undoes it.
func (n *nemesis) inject(ctx context.Context, kind string) (heal func(context.Context) error, desc string, err error) {
	c := n.c
	switch kind {
	case FaultKill:
		nd := c.nodes[n.rng.IntN(len(c.nodes))]
		if err := c.kill(ctx, nd); err != nil {
			return nil, "", err
		}
		return func(context.Context) error { return c.start(nd) }, fmt.Sprintf("kill -9 node %d", nd.id), nil
	case FaultPause:
		nd := n.leader(ctx)
		if err := c.pause(nd, true); err != nil {
			return nil, "", err
		}
		return func(context.Context) error { return c.pause(nd, false) }, fmt.Sprintf("pause node %d (a leader)", nd.id), nil
	case FaultRestart:
		nd := c.nodes[n.rng.IntN(len(c.nodes))]
		if err := c.stop(ctx, nd); err != nil {
			return nil, "", err
		}
		if err := c.start(nd); err != nil {
			return nil, "", err
		}
		return func(context.Context) error { return nil }, fmt.Sprintf("restart node %d", nd.id), nil
	case FaultIsolateLeader:
		nd := n.leader(ctx)
		c.partition([]*node{nd}, n.others(nd))
		return n.healNet, fmt.Sprintf("isolate node %d (a leader) from the other nodes", nd.id), nil
	case FaultSplit:
		nd := c.nodes[n.rng.IntN(len(c.nodes))]
		c.partition([]*node{nd}, n.others(nd))
		return n.healNet, fmt.Sprintf("split: minority {%d}", nd.id), nil
	case FaultOneWay:
		nd := n.leader(ctx)
		for _, o := range n.others(nd) {
			c.sw.SetFault(nd.addr, o.addr, netlab.Fault{Drop: true})
		}
		return n.healNet, fmt.Sprintf("one-way: node %d's packets to the other nodes dropped", nd.id), nil
	case FaultLatency:
		c.degrade(netlab.Fault{Delay: 50 * time.Millisecond, Jitter: 100 * time.Millisecond})
		return n.healNet, "latency 50–150 ms on every link", nil
	case FaultLoss:
		c.degrade(netlab.Fault{Loss: 0.10})
		return n.healNet, "10% loss on every link", nil
	case FaultRestartAll:
		for _, nd := range c.nodes {
			if err := c.kill(ctx, nd); err != nil {
				return nil, "", err
			}
		}
		for _, nd := range c.nodes {
			if err := c.start(nd); err != nil {
				return nil, "", err
			}
		}
		return func(context.Context) error { return nil }, "kill -9 every node and start them all", nil
	}
	return nil, "", fmt.Errorf("chaos: unknown fault %q (known: %v)", kind, AllFaults)
}

func (n *nemesis) healNet(context.Context) error {
	n.c.heal()
	return nil
}

// healAll clears every fault: the network, paused and stopped processes.
func (n *nemesis) healAll() error {
	n.c.heal()
	for _, nd := range n.c.nodes {
		if err := n.c.pause(nd, false); err != nil {
			return err
		}
		if !n.c.running(nd) {
			if err := n.c.start(nd); err != nil {
				return err
			}
		}
	}
	return nil
}
