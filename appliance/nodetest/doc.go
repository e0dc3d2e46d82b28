// Package nodetest starts real eddy nodes in-process for tests: a real
// Dragonboat NodeHost, real QUIC and TCP listeners on 127.0.0.1 with
// kernel-chosen ports, real files in a test directory. Nothing is faked.
package nodetest
