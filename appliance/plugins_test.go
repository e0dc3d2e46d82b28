package appliance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodecfg"
	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/plugins/pluginstest"
	"github.com/eddybroker/eddy/sdk"
)

// TestTTLRetentionPluginOnEveryReplica: the TTL example plugin, attached
// to a replicated topic, deletes the segment whose records all expired;
// the log start offset moves the same on every replica, and records
// without a TTL are kept.
func TestTTLRetentionPluginOnEveryReplica(t *testing.T) {
	pluginstest.SkipUnderRace(t)
	nodes := nodetest.StartCluster(t, 3, nodetest.WithConfig(func(c *nodecfg.Config) {
		c.Topics.RetentionCheckInterval = "1h" // the test triggers retention itself
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := &sdk.ClusterAdmin{URL: "http://" + nodes[0].Addrs().Admin}
	if _, err := adm.UploadPlugin(ctx, "ttl", pluginstest.Example(t, "ttl"), ""); err != nil {
		t.Fatal(err)
	}
	c := clusterClient(t, nodes)
	resp, err := c.Admin().CreateTopic(ctx, 1, 3, map[string]*string{
		"eddy.retention": strPtr("ttl"),
		"segment.ms":     strPtr("200"),
	}, "expiring")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.NewKgo(kgo.DefaultProduceTopic("expiring"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(n int, ttl string) {
		t.Helper()
		var rs []*kgo.Record
		for i := range n {
			r := &kgo.Record{Value: []byte(fmt.Sprint(i))}
			if ttl != "" {
				r.Headers = []kgo.RecordHeader{{Key: "ttl", Value: []byte(ttl)}}
			}
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(10, "300ms") // the first segment: all expire
	time.Sleep(300 * time.Millisecond)
	produce(5, "") // rolls to a second segment: kept forever
	time.Sleep(300 * time.Millisecond)
	produce(1, "") // rolls again, so the second segment is closed too
	time.Sleep(200 * time.Millisecond)

	starts := func() map[uint64]int64 {
		out := map[uint64]int64{}
		for _, n := range nodes {
			for _, r := range n.Host().Replicas() {
				if r.Topic != "expiring" {
					continue
				}
				p, err := n.Host().Partition(r.ShardID)
				if err != nil {
					continue
				}
				if l, err := p.Log(); err == nil {
					out[n.Config.NodeID] = l.StartOffset()
				}
			}
		}
		return out
	}
	for _, n := range nodes {
		n.Host().EnforceRetention()
	}
	waitFor(t, "every replica to start at offset 10", 30*time.Second, func() bool {
		s := starts()
		return len(s) == 3 && s[1] == 10 && s[2] == 10 && s[3] == 10
	})
	// Records without a TTL stay, however often retention runs.
	time.Sleep(500 * time.Millisecond)
	for _, n := range nodes {
		n.Host().EnforceRetention()
	}
	time.Sleep(500 * time.Millisecond)
	if s := starts(); s[1] != 10 || s[2] != 10 || s[3] != 10 {
		t.Fatalf("log start offsets %v after a second pass; records without a TTL must be kept", s)
	}
	t.Logf("log start offset 10 on nodes %v", starts())
}

func strPtr(s string) *string { return &s }
