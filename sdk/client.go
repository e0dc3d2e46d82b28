package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/transport"
)

// Client is a connection to an eddy cluster. It is safe for concurrent
// use; Close releases it.
type Client struct {
	opts  options
	base  []kgo.Opt // connection options shared by every kgo client made here
	kgo   *kgo.Client
	admin *kadm.Client
	// adminKgo carries the admin requests: unlike kgo, it never asks
	// brokers to create the topics its metadata requests name, so that
	// describing a mistyped topic does not create it.
	adminKgo *kgo.Client
	dialer   *transport.QUICDialer
}

// Dial connects to the cluster and checks that a broker answers.
func Dial(ctx context.Context, opts ...Option) (*Client, error) {
	o := options{brokers: []string{DefaultBroker}, transport: QUIC, clientID: "eddy-sdk"}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Client{opts: o}
	base, err := c.connOptions()
	if err != nil {
		return nil, err
	}
	c.base = base
	// Producing to a topic that does not exist yet asks the broker to
	// create it; whether it does is the broker's setting.
	kopts := append(append([]kgo.Opt{}, base...), kgo.AllowAutoTopicCreation())
	c.kgo, err = kgo.NewClient(append(kopts, o.kgoOpts...)...)
	if err != nil {
		c.closeDialer()
		return nil, fmt.Errorf("sdk: %w", err)
	}
	c.adminKgo, err = kgo.NewClient(append(append([]kgo.Opt{}, base...), adminOptions(o.kgoOpts)...)...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sdk: %w", err)
	}
	c.admin = kadm.NewClient(c.adminKgo)
	if err := c.kgo.Ping(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("sdk: no broker answered at %v over %s: %w", o.brokers, o.transport, err)
	}
	return c, nil
}

// adminOptions drops consumer and group options from what the admin
// client gets: with kgo.ConsumerGroup it would join the group as a second
// member that never polls, and the partitions assigned to it would never
// be consumed (the chaos harness found this).
func adminOptions(opts []kgo.Opt) []kgo.Opt {
	var out []kgo.Opt
	for _, o := range opts {
		if _, ok := o.(kgo.GroupOpt); ok {
			continue
		}
		if _, ok := o.(kgo.ConsumerOpt); ok {
			continue
		}
		out = append(out, o)
	}
	return out
}

// connOptions are the kgo options that reach the brokers: seeds, client
// id, and the QUIC dialer or TCP TLS.
func (c *Client) connOptions() ([]kgo.Opt, error) {
	o := c.opts
	tlsConf, err := o.tls()
	if err != nil {
		return nil, err
	}
	tlsConf, authOpts, err := o.authOptions(tlsConf)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ClientID(o.clientID),
		// kgo waits at least 5 s between metadata loads by default, which
		// is most of a failover: the new leader is elected in well under a
		// second. eddy answers Metadata from local state, so asking more
		// often is cheap. WithKgoOptions can set it back.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	opts = append(opts, authOpts...)
	switch o.transport {
	case QUIC:
		if tlsConf == nil {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS13}
		}
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{transport.ALPN}
		c.dialer = transport.NewQUICDialer(tlsConf)
		opts = append(opts, kgo.Dialer(c.dialer.DialContext))
	case TCP:
		if tlsConf != nil {
			opts = append(opts, kgo.DialTLSConfig(tlsConf))
		}
	default:
		return nil, fmt.Errorf("sdk: unknown transport %q (want %q or %q)", o.transport, QUIC, TCP)
	}
	return opts, nil
}

func (o options) tls() (*tls.Config, error) {
	switch {
	case o.tlsConfig != nil:
		return o.tlsConfig, nil
	case o.caPool != nil:
		return transport.ClientTLSConfig(o.caPool, ""), nil
	case o.caFile != "":
		pool, err := transport.LoadCAPool(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		return transport.ClientTLSConfig(pool, ""), nil
	}
	return nil, nil
}

// NewKgo returns another kgo client that reaches the cluster the same way
// (seeds, transport, TLS, the shared QUIC connections) with extra options,
// e.g. a consumer or a producer with different batching. Close it before
// closing the Client.
func (c *Client) NewKgo(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, c.base...), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("sdk: %w", err)
	}
	return cl, nil
}

// Kgo returns the underlying franz-go client, for everything the helpers
// here do not cover. Do not close it; Close the Client.
func (c *Client) Kgo() *kgo.Client { return c.kgo }

// Admin returns a kadm admin client (topics, configs, offsets, groups).
// It reaches the brokers the same way, but unlike Kgo it never has a
// topic created by naming it: describing a missing topic reports it
// missing.
func (c *Client) Admin() *kadm.Client { return c.admin }

// Close closes the client and its connections.
func (c *Client) Close() {
	if c.kgo != nil {
		c.kgo.Close()
	}
	if c.adminKgo != nil {
		c.adminKgo.Close()
	}
	c.closeDialer()
}

func (c *Client) closeDialer() {
	if c.dialer != nil {
		c.dialer.Close()
	}
}

// Produce writes records and waits until every one is acknowledged (or
// failed). It returns the first error, joined with the others.
func (c *Client) Produce(ctx context.Context, records ...*kgo.Record) error {
	var errs []error
	for _, r := range c.kgo.ProduceSync(ctx, records...) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("produce to %s: %w", r.Record.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}
