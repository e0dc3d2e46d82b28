// Package chaos tests a real eddy cluster the way Jepsen tests Kafka: it
// runs three `eddy serve` processes, each in its own network namespace
// joined by a user-space switch (netlab), drives them with idempotent
// producers and group consumers over QUIC and TCP, injects faults (kill
// -9, pause, restart, partitions, one-way loss, latency, loss, all nodes
// restarting at once), heals, and then checks everything it read back
// against everything it was told: lost, duplicated, reordered or skipped
// records, committed group offsets going backwards, records nobody sent,
// and replicas whose bytes differ.
//
// A Run owns every process, namespace and client it starts and stops
// them all before it returns. `make chaos` runs the full schedule through
// cmd/eddy-chaos; `make test` runs a short one.
package chaos
