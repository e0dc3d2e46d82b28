// Package bench is the benchmark harness behind `eddy bench` (built with
// -tags bench, so the appliance binary never carries the NATS peer): it
// owns declarative workloads (YAML, built-ins under workloads/), the
// targets it starts fresh for every run (eddy in-process over QUIC or TCP,
// embedded NATS JetStream), the runner that alternates them and measures
// throughput, CPU per record, coordinated-omission-corrected latency and
// memory, the machine-limits probe, and the JSON, markdown and PNG
// reports. The Go benchmarks in single_node_test.go (`make bench-go`)
// stay for quick profiling of one node.
package bench
