package broker_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// TestKafkaTLSListener: with kafka_tls on, the TCP listener speaks TLS with
// the node's certificate; clients that verify against the node's CA get
// in, and plaintext clients and clients trusting another CA do not.
func TestKafkaTLSListener(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *nodecfg.Config) { c.KafkaTLS = true }))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.Client(t, sdk.TCP) // nodetest passes the CA when kafka_tls is on
	if err := c.Produce(ctx, &kgo.Record{Topic: "secure", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if _, err := sdk.Dial(short, sdk.WithTransport(sdk.TCP), sdk.WithBrokers(n.Addrs().Kafka)); err == nil {
		t.Fatal("a plaintext client reached the TLS listener")
	}
	if _, err := sdk.Dial(short, sdk.WithTransport(sdk.TCP), sdk.WithBrokers(n.Addrs().Kafka), sdk.WithCAPool(x509.NewCertPool())); err == nil {
		t.Fatal("a client trusting another CA reached the TLS listener")
	}
}
