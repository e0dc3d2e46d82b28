package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodetest"
)

// TestEveryAdvertisedVersionAnswers sends every API eddy advertises at
// every version it advertises, with default (mostly empty) fields, and
// checks the response decodes at that version: the advertised table and
// the handlers agree, and no version's encoding is malformed.
func TestEveryAdvertisedVersionAnswers(t *testing.T) {
	n := nodetest.Start(t)
	r := dialRaw(t, n.Addrs().Kafka)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	keys := r.roundTrip(av).(*kmsg.ApiVersionsResponse).ApiKeys
	if len(keys) < 14 {
		t.Fatalf("only %d APIs advertised", len(keys))
	}
	for _, k := range keys {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			req := kmsg.RequestForKey(k.ApiKey)
			if req == nil {
				t.Fatalf("advertised key %d is unknown to kmsg", k.ApiKey)
			}
			if v > req.MaxVersion() {
				t.Fatalf("%s: advertised v%d beyond the codec's v%d", kmsg.NameForKey(k.ApiKey), v, req.MaxVersion())
			}
			req.SetVersion(v)
			if p, ok := req.(*kmsg.ProduceRequest); ok {
				p.Acks = 1 // acks=0 has no response to check
			}
			r.roundTrip(req) // fails the test if the response does not decode
		}
	}
}
