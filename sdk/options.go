package sdk

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Transport selects how the client reaches brokers.
type Transport string

// Transports.
const (
	// QUIC carries each Kafka connection on a stream of one QUIC connection
	// per broker, with TLS 1.3. The default.
	QUIC Transport = "quic"
	// TCP is the classic Kafka TCP listener, plaintext unless a TLS config
	// or CA is given.
	TCP Transport = "tcp"
)

// DefaultBroker is where a local node listens by default.
const DefaultBroker = "127.0.0.1:9092"

type options struct {
	brokers   []string
	transport Transport
	caFile    string
	caPool    *x509.CertPool
	tlsConfig *tls.Config
	clientID  string
	kgoOpts   []kgo.Opt
	// clientCert and clientKey are PEM files (WithClientCert); sasl is the
	// SASL login (WithSASL). See auth.go.
	clientCert, clientKey string
	sasl                  *saslLogin
}

// Option configures Dial.
type Option func(*options)

// WithBrokers sets the seed brokers (host:port). Default: 127.0.0.1:9092.
func WithBrokers(addrs ...string) Option {
	return func(o *options) { o.brokers = append([]string(nil), addrs...) }
}

// WithTransport selects QUIC (default) or TCP.
func WithTransport(t Transport) Option {
	return func(o *options) { o.transport = t }
}

// WithCAFile verifies brokers against the CA in file, e.g. a node's
// <data>/tls/ca.crt. Default: the system roots.
func WithCAFile(file string) Option {
	return func(o *options) { o.caFile = file }
}

// WithCAPool verifies brokers against pool.
func WithCAPool(pool *x509.CertPool) Option {
	return func(o *options) { o.caPool = pool }
}

// WithTLSConfig uses c as the TLS configuration (client certificates,
// custom verification). For QUIC, NextProtos is set to eddy's ALPN.
// It takes precedence over WithCAFile and WithCAPool.
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) { o.tlsConfig = c }
}

// WithClientID sets the Kafka client id brokers log. Default: "eddy-sdk".
func WithClientID(id string) Option {
	return func(o *options) { o.clientID = id }
}

// WithKgoOptions passes options straight to the underlying kgo client,
// after the SDK's own, so they win.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(o *options) { o.kgoOpts = append(o.kgoOpts, opts...) }
}
