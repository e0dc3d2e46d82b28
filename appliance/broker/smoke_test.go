package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

func TestSmoke(t *testing.T) {
	n := nodetest.Start(t)
	for _, tr := range []sdk.Transport{sdk.TCP, sdk.QUIC} {
		t.Run(string(tr), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := n.Client(t, tr)
			topic := "smoke-" + string(tr)
			if err := c.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("hello")}); err != nil {
				t.Fatal(err)
			}
			var got []string
			err := c.Consume(ctx, topic, func(r *kgo.Record) error {
				got = append(got, string(r.Value))
				return nil
			}, sdk.FromBeginning(), sdk.MaxRecords(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != "hello" {
				t.Fatalf("got %v", got)
			}
		})
	}
}
