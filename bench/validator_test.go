package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/plugins/pluginstest"
	"github.com/eddybroker/eddy/sdk"
)

// BenchmarkProduceValidated measures acknowledged 1 KiB JSON records (the
// produce-validated workload's) per second over QUIC into a 3-partition topic without a validator and with
// the JSON Schema example plugin attached, in the same run, and the
// validator's cost per record.
func BenchmarkProduceValidated(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	adm := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin}
	if _, err := adm.UploadPlugin(ctx, "bench-schema", pluginstest.Example(b, "jsonschema"), ""); err != nil {
		b.Fatal(err)
	}
	// The harness's produce-validated workload: the same values and schema.
	w, err := LoadWorkload("produce-validated")
	if err != nil {
		b.Fatal(err)
	}
	for _, validated := range []bool{false, true} {
		name := "none"
		if validated {
			name = "jsonschema"
		}
		b.Run(name, func(b *testing.B) {
			c := dial(b, n, sdk.QUIC)
			defer c.Close()
			topic := fmt.Sprintf("bench-json-%d", topicSeq.Add(1))
			var cfg map[string]*string
			if validated {
				v, s := "bench-schema", w.ValidatorConfig["schema"]
				cfg = map[string]*string{"eddy.validator": &v, "eddy.validator.config.schema": &s}
			}
			resp, err := c.Admin().CreateTopic(ctx, 3, 1, cfg, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				b.Fatal(err)
			}
			cl, err := c.NewKgo(producerOpts()...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			b.SetBytes(recordSize)
			b.ResetTimer()
			start := time.Now()
			var failed atomic.Int64
			for i := range b.N {
				v := make([]byte, recordSize)
				fillJSONValue(v, time.Now(), int64(i))
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d records failed", f)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
	p, err := adm.Plugin(ctx, "bench-schema")
	if err == nil && len(p.Versions) > 0 {
		for _, s := range p.Versions[0].Stats {
			if s.Records > 0 {
				b.Logf("validator: %d calls, %d records, mean %.2f ms per call → %.1f µs per record", s.Calls, s.Records, s.MeanMs, s.MeanMs*1000*float64(s.Calls)/float64(s.Records))
			}
		}
	}
}
