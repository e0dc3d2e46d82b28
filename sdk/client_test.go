package sdk_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

func TestDialRefusesAnUnknownCA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAPool(x509.NewCertPool()))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial with an empty CA pool: %v, want a certificate error", err)
	}
}

func TestDialRejectsUnknownTransport(t *testing.T) {
	_, err := sdk.Dial(context.Background(), sdk.WithTransport("carrier-pigeon"))
	if err == nil || !strings.Contains(err.Error(), `unknown transport "carrier-pigeon"`) {
		t.Fatalf("got %v", err)
	}
}

// TestTCPAndQUICSeeTheSameData: a record written over QUIC is read over
// the Kafka TCP listener.
func TestTCPAndQUICSeeTheSameData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	tc, err := sdk.Dial(ctx, sdk.WithBrokers(kafkaAddr), sdk.WithTransport(sdk.TCP))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := q.Produce(ctx, &kgo.Record{Topic: "both", Partition: 0, Value: []byte("via quic")}); err != nil {
		t.Fatal(err)
	}
	var got string
	err = tc.Consume(ctx, "both", func(r *kgo.Record) error {
		got = string(r.Value)
		return sdk.ErrStop
	}, sdk.FromBeginning())
	if err != nil || got != "via quic" {
		t.Fatalf("read over TCP %q (%v)", got, err)
	}
}
