// Package appliance assembles and runs one eddy node: it binds the QUIC,
// Kafka TCP and admin HTTP listeners, creates the node's TLS material,
// starts the Raft host and the Kafka broker, and stops them in order. The
// config schema is package nodecfg; the Kafka API is package broker;
// metrics and health are package status.
package appliance
