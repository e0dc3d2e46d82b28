// Package status owns what a node reports about itself: Prometheus metrics
// (one Metrics value per node, on its own registry so in-process test
// nodes do not collide) and the /healthz, /readyz and /metrics handlers of
// the admin HTTP port.
package status
