package broker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateTopicsValidation(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	adm := n.Client(t, sdk.TCP).Admin()
	bad := "nope"
	tests := []struct {
		name       string
		topic      string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       error
		msg        string
	}{
		{"bad name", "a/b", 1, 1, nil, kerr.InvalidTopicException, "'/'"},
		{"zero partitions", "zero", 0, 1, nil, kerr.InvalidPartitions, "positive"},
		{"replication over nodes", "rf2", 1, 2, nil, kerr.InvalidReplicationFactor, "larger than the 1 available nodes"},
		{"unknown config", "cfg", 1, 1, map[string]*string{"retention.mss": &bad}, kerr.InvalidConfig, "unknown config"},
		{"bad config value", "cfg2", 1, 1, map[string]*string{"retention.ms": &bad}, kerr.InvalidConfig, "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// kadm returns a lone topic's error both ways.
			resp, err := adm.CreateTopic(ctx, tt.partitions, tt.rf, tt.configs, tt.topic)
			if !errors.Is(err, tt.want) || !errors.Is(resp.Err, tt.want) || !strings.Contains(resp.ErrMessage, tt.msg) {
				t.Fatalf("got %v %q, want %v containing %q", resp.Err, resp.ErrMessage, tt.want, tt.msg)
			}
		})
	}
	if _, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "validate-only"); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Host().Meta().Topics["validate-only"]; ok {
		t.Fatal("ValidateOnly created the topic")
	}
	if resp, _ := adm.CreateTopic(ctx, 2, 1, nil, "twice"); resp.Err != nil {
		t.Fatal(resp.Err)
	}
	if resp, _ := adm.CreateTopic(ctx, 2, 1, nil, "twice"); !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v", resp.Err)
	}
	if len(n.Host().Meta().Topics) != 1 {
		t.Fatalf("%d topics exist, want 1", len(n.Host().Meta().Topics))
	}
}

func TestConfigsDescribeAndAlter(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	adm := n.Client(t, sdk.TCP).Admin()
	day := "86400000"
	if resp, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &day}, "cfg"); resp.Err != nil {
		t.Fatal(resp.Err)
	}
	describe := func() map[string]kadm.Config {
		rc, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		r, err := rc.On("cfg", nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]kadm.Config{}
		for _, c := range r.Configs {
			out[c.Key] = c
		}
		return out
	}
	cfgs := describe()
	if c := cfgs["retention.ms"]; *c.Value != day || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %v from %v", *c.Value, c.Source)
	}
	if c := cfgs["segment.bytes"]; *c.Value != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes: %v from %v", *c.Value, c.Source)
	}
	hour := "3600000"
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: &hour},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "cfg")
	if err != nil || resps[0].Err != nil {
		t.Fatal(err, resps)
	}
	cfgs = describe()
	if c := cfgs["segment.ms"]; *c.Value != hour || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("segment.ms after alter: %v from %v", *c.Value, c.Source)
	}
	if c := cfgs["retention.ms"]; *c.Value != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after delete: %v from %v", *c.Value, c.Source)
	}
	bad := "LocalTime"
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: &bad}}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(resps[0].Err, kerr.InvalidConfig) || !strings.Contains(resps[0].ErrMessage, "CreateTime") {
		t.Fatalf("bad enum: %v %q", resps[0].Err, resps[0].ErrMessage)
	}
	// Broker configs describe the node's defaults.
	brc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rc := range brc {
		for _, c := range rc.Configs {
			if c.Key == "num.partitions" && *c.Value == "3" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("broker configs lack num.partitions=3: %+v", brc)
	}
}

func TestCreatePartitionsAndDeleteTopic(t *testing.T) {
	n := nodetest.Start(t)
	ctx := ctxT(t)
	c := n.Client(t, sdk.QUIC)
	adm := c.Admin()
	createTopic(ctx, t, c, "grow", 2)
	resps, err := adm.UpdatePartitions(ctx, 4, "grow")
	if err != nil || resps["grow"].Err != nil {
		t.Fatal(err, resps)
	}
	if err := c.Produce(ctx, &kgo.Record{Topic: "grow", Partition: 3, Value: []byte("p3")}); err != nil {
		// The default partitioner may pick another partition; what matters
		// is that producing works with four partitions.
		t.Fatal(err)
	}
	if got := len(n.Host().Meta().Topics["grow"].Partitions); got != 4 {
		t.Fatalf("%d partitions, want 4", got)
	}
	resps, _ = adm.UpdatePartitions(ctx, 2, "grow")
	if !errors.Is(resps["grow"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrinking: %v", resps["grow"].Err)
	}

	shards := map[uint64]bool{}
	for _, p := range n.Host().Meta().Topics["grow"].Partitions {
		shards[p.ShardID] = true
	}
	dresp, err := adm.DeleteTopic(ctx, "grow")
	if err != nil || dresp.Err != nil {
		t.Fatal(err, dresp.Err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil || topics.Has("grow") {
		t.Fatalf("topic still listed after delete (%v)", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for id := range shards {
		dir := filepath.Join(n.Config.DataDir, "partitions", strconv.FormatUint(id, 10))
		for {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition directory %s still exists after the topic was deleted", dir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The name can be used again, for a new, empty topic.
	createTopic(ctx, t, c, "grow", 1)
	if got := endOffset(t, n, "grow", 0); got != 0 {
		t.Fatalf("re-created topic has end offset %d", got)
	}
}
