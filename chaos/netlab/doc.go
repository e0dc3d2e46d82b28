// Package netlab builds test networks out of Linux network namespaces
// joined by a switch in user space: every namespace gets a TUN device, and
// the switch moves IP packets between them by destination address,
// applying per-direction faults (drop everything, drop a share, delay).
//
// The kernels eddy is tested on have no sch_netem, and nftables can drop
// but not delay, so faults live in the switch: partitions (both ways or
// one way), loss and latency come from one mechanism, while the TCP and
// UDP stacks at both ends are the kernel's own. Everything netlab starts
// belongs to the Switch, whose Close stops it and deletes the namespaces
// it created. It needs root, the ip command and /dev/net/tun.
package netlab
