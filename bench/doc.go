// Package bench is the benchmark harness: workloads, runners for eddy over
// QUIC and TCP and for the peer, latency histograms and reports. Until the
// harness lands it holds the single-node throughput benchmarks.
package bench
