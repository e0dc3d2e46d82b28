package sdk

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddybroker/eddy/transport"
)

// SASL mechanisms a client can log in with (WithSASL).
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// WithClientCert presents the client certificate in certFile with the key
// in keyFile (PEM; `eddy cert client NAME` writes both) to brokers whose
// listeners ask for one (auth: mtls, or to be known by name on others).
// The broker knows the client as User:<the certificate's common name>.
// Default: no client certificate.
func WithClientCert(certFile, keyFile string) Option {
	return func(o *options) { o.clientCert, o.clientKey = certFile, keyFile }
}

// WithSASL logs in to brokers whose listeners run SASL (auth: sasl) as
// user with password, by mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
// (PLAIN sends the password itself: use it only over TLS). The broker
// knows the client as User:<user>. Default: no SASL.
func WithSASL(mechanism, user, password string) Option {
	return func(o *options) {
		o.sasl = &saslLogin{mechanism: strings.ToUpper(mechanism), user: user, password: password}
	}
}

type saslLogin struct{ mechanism, user, password string }

// kgoMechanism returns the franz-go mechanism for the login.
func (l *saslLogin) kgoMechanism() (sasl.Mechanism, error) {
	if l.user == "" || l.password == "" {
		return nil, fmt.Errorf("sdk: SASL %s needs a user and a password", l.mechanism)
	}
	switch l.mechanism {
	case SASLPlain:
		return plain.Auth{User: l.user, Pass: l.password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: l.user, Pass: l.password}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: l.user, Pass: l.password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sdk: unknown SASL mechanism %q (want %s, %s or %s)", l.mechanism, SASLScramSHA512, SASLScramSHA256, SASLPlain)
}

// authOptions adds the client certificate to tlsConf (a new config when
// nil; system roots then verify brokers) and returns the kgo options of
// the SASL login.
func (o options) authOptions(tlsConf *tls.Config) (*tls.Config, []kgo.Opt, error) {
	var opts []kgo.Opt
	if o.clientCert != "" || o.clientKey != "" {
		cert, err := transport.LoadClientCert(o.clientCert, o.clientKey)
		if err != nil {
			return nil, nil, fmt.Errorf("sdk: %w", err)
		}
		if tlsConf == nil {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tlsConf = tlsConf.Clone()
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	if o.sasl != nil {
		m, err := o.sasl.kgoMechanism()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return tlsConf, opts, nil
}
