// Package status owns what a node reports about itself: Prometheus metrics
// (one Metrics value per node, on its own registry so in-process test
// nodes do not collide), the /healthz, /readyz and /metrics handlers of
// the admin HTTP port, and the data disk's free space, which DiskGuard
// keeps above a reserve by refusing writes before Raft runs out of room.
package status
