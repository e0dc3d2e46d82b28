package nodecfg

import (
	"fmt"
	"time"
)

// Defaults of the limits section (firmware-config/README.md lists them).
const (
	DefaultMaxPreAuthFrameBytes = 512 << 10
	DefaultMaxConnectionsPerIP  = 512
	DefaultMaxStreamsPerQUIC    = 1024
	// DefaultMaxRecordsPerBatch sits above the 149,796 records of 7 bytes
	// (the smallest encoding) that a 1 MiB uncompressed batch can hold, so
	// no client on default settings reaches it, while a hostile compressed
	// batch cannot make the broker decode millions of records at once.
	DefaultMaxRecordsPerBatch   = 250_000
	DefaultMaxDecompressedBytes = 64 << 20
	// DefaultMinFreeDiskBytes leaves room for Raft's log database to flush
	// and compact and for checkpoints once produces stop.
	DefaultMinFreeDiskBytes = 512 << 20
	DefaultMinTransferRate  = 64 << 10
	DefaultHandshakeTimeout = "10s"
	DefaultFrameTimeout     = "30s"
	DefaultWriteTimeout     = "30s"
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms.
	DefaultIdleTimeout = "10m"
)

// LimitsConfig bounds what one client can make the node do
// (docs/reliability.md, "Bad input and limits"). Zero values take the
// defaults.
type LimitsConfig struct {
	// MaxFrameBytes caps a request frame; 0 means 100 MiB.
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// MaxInFlightPerConn caps pipelined requests per connection; 0 means 64.
	MaxInFlightPerConn int `yaml:"max_in_flight_per_connection"`
	// MaxPreAuthFrameBytes caps a request frame before the connection has
	// authenticated (Kafka's sasl.server.max.receive.size); a larger one
	// closes the connection. 0 means 512 KiB.
	MaxPreAuthFrameBytes int `yaml:"max_pre_auth_frame_bytes"`
	// MaxConnectionsPerIP caps the TCP connections, and separately the
	// QUIC connections, one client address holds; 0 means 512.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxStreamsPerQUICConnection caps the open streams (Kafka
	// connections) of one QUIC connection; 0 means 1024.
	MaxStreamsPerQUICConnection int `yaml:"max_streams_per_quic_connection"`
	// MaxRecordsPerBatch caps the record count a produced batch may
	// declare; 0 means 250000.
	MaxRecordsPerBatch int `yaml:"max_records_per_batch"`
	// MaxDecompressedBytes caps how far a compressed batch may inflate when
	// the broker decodes it (for a validator or partitioner plugin);
	// 0 means 64 MiB.
	MaxDecompressedBytes int `yaml:"max_decompressed_bytes"`
	// MinFreeDiskBytes is the free space the data directory's file system
	// keeps: below it produces fail with KAFKA_STORAGE_ERROR until space
	// returns. 0 means 512 MiB.
	MinFreeDiskBytes int64 `yaml:"min_free_disk_bytes"`
	// MinTransferRate (bytes/s) is the slowest client link the frame and
	// write timeouts make room for on top of their fixed part; 0 means
	// 64 KiB/s.
	MinTransferRate int `yaml:"min_transfer_rate_bytes"`
	// HandshakeTimeout bounds a TLS or QUIC handshake (Go duration;
	// default 10s).
	HandshakeTimeout string `yaml:"handshake_timeout"`
	// FrameTimeout bounds a request's arrival once it started (slowloris),
	// plus its size at MinTransferRate (default 30s).
	FrameTimeout string `yaml:"frame_timeout"`
	// WriteTimeout bounds writing a response to a client that does not
	// read, plus its size at MinTransferRate (default 30s).
	WriteTimeout string `yaml:"write_timeout"`
	// IdleTimeout closes a connection without requests or pending
	// responses for this long (default 10m; "0s": never).
	IdleTimeout string `yaml:"idle_timeout"`
}

func (l *LimitsConfig) applyDefaults() {
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&l.MaxFrameBytes, DefaultMaxFrameBytes)
	defInt(&l.MaxInFlightPerConn, 64)
	defInt(&l.MaxPreAuthFrameBytes, DefaultMaxPreAuthFrameBytes)
	defInt(&l.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	defInt(&l.MaxStreamsPerQUICConnection, DefaultMaxStreamsPerQUIC)
	defInt(&l.MaxRecordsPerBatch, DefaultMaxRecordsPerBatch)
	defInt(&l.MaxDecompressedBytes, DefaultMaxDecompressedBytes)
	defInt(&l.MinTransferRate, DefaultMinTransferRate)
	if l.MinFreeDiskBytes == 0 {
		l.MinFreeDiskBytes = DefaultMinFreeDiskBytes
	}
	defStr := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defStr(&l.HandshakeTimeout, DefaultHandshakeTimeout)
	defStr(&l.FrameTimeout, DefaultFrameTimeout)
	defStr(&l.WriteTimeout, DefaultWriteTimeout)
	defStr(&l.IdleTimeout, DefaultIdleTimeout)
}

func (l *LimitsConfig) validate() error {
	if l.MaxFrameBytes < 1<<20 {
		return fmt.Errorf("limits.max_frame_bytes: %d is below 1 MiB, too small for Kafka clients", l.MaxFrameBytes)
	}
	if l.MaxInFlightPerConn < 1 {
		return fmt.Errorf("limits.max_in_flight_per_connection: %d must be at least 1", l.MaxInFlightPerConn)
	}
	// SASL and ApiVersions requests are a few hundred bytes.
	if l.MaxPreAuthFrameBytes < 4<<10 || l.MaxPreAuthFrameBytes > l.MaxFrameBytes {
		return fmt.Errorf("limits.max_pre_auth_frame_bytes: %d is outside 4 KiB..limits.max_frame_bytes (%d)", l.MaxPreAuthFrameBytes, l.MaxFrameBytes)
	}
	if l.MaxConnectionsPerIP < 1 {
		return fmt.Errorf("limits.max_connections_per_ip: %d must be at least 1", l.MaxConnectionsPerIP)
	}
	if l.MaxStreamsPerQUICConnection < 1 || l.MaxStreamsPerQUICConnection > 1<<20 {
		return fmt.Errorf("limits.max_streams_per_quic_connection: %d is outside 1..1048576", l.MaxStreamsPerQUICConnection)
	}
	if l.MaxRecordsPerBatch < 1 {
		return fmt.Errorf("limits.max_records_per_batch: %d must be at least 1", l.MaxRecordsPerBatch)
	}
	if l.MaxDecompressedBytes < 1<<20 {
		return fmt.Errorf("limits.max_decompressed_bytes: %d is below 1 MiB", l.MaxDecompressedBytes)
	}
	if l.MinFreeDiskBytes < 0 {
		return fmt.Errorf("limits.min_free_disk_bytes: %d must not be negative", l.MinFreeDiskBytes)
	}
	if l.MinTransferRate < 1 {
		return fmt.Errorf("limits.min_transfer_rate_bytes: %d must be at least 1", l.MinTransferRate)
	}
	for _, d := range []struct {
		key, val string
		zeroOK   bool
	}{
		{"limits.handshake_timeout", l.HandshakeTimeout, false},
		{"limits.frame_timeout", l.FrameTimeout, false},
		{"limits.write_timeout", l.WriteTimeout, false},
		{"limits.idle_timeout", l.IdleTimeout, true},
	} {
		v, err := time.ParseDuration(d.val)
		if err != nil || v < 0 || (v == 0 && !d.zeroOK) {
			return fmt.Errorf("%s: %q is not a positive duration such as 10s or 1m", d.key, d.val)
		}
	}
	return nil
}

// Timeouts returns the parsed handshake, frame, write and idle timeouts
// (idle 0: never). Call after Validate.
func (l LimitsConfig) Timeouts() (handshake, frame, write, idle time.Duration) {
	handshake, _ = time.ParseDuration(l.HandshakeTimeout)
	frame, _ = time.ParseDuration(l.FrameTimeout)
	write, _ = time.ParseDuration(l.WriteTimeout)
	idle, _ = time.ParseDuration(l.IdleTimeout)
	return handshake, frame, write, idle
}
