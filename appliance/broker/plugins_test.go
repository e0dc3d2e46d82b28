package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/plugins/pluginstest"
	"github.com/eddybroker/eddy/sdk"
	"github.com/eddybroker/eddy/sdk/wasmpart"
)

const ordersSchema = `{"type":"object","required":["id","price"],"properties":{"id":{"type":"string"},"price":{"type":"number","minimum":0}}}`

// TestJSONSchemaValidator uploads the JSON Schema example plugin, attaches
// it to a topic and produces over QUIC with kgo: valid records are stored,
// invalid ones are refused with INVALID_RECORD and their reasons, nothing
// of a refused batch is written, and detaching lets everything through.
func TestJSONSchemaValidator(t *testing.T) {
	pluginstest.SkipUnderRace(t)
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin}
	v, err := adm.UploadPlugin(ctx, "orders-schema", pluginstest.Example(t, "jsonschema"), "orders v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || len(v.Kinds) != 1 || v.Kinds[0] != "validator" {
		t.Fatalf("uploaded %+v", v)
	}
	t.Logf("upload: compiled in %.0f ms, instantiated in %.1f ms", v.CompileMs, v.InstantiateMs)

	c := n.Client(t, sdk.QUIC)
	resp, err := c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{
		"eddy.validator":               strPtr("orders-schema"),
		"eddy.validator.config.schema": strPtr(ordersSchema),
	}, "orders")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.NewKgo(kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	valid := []string{`{"id":"a","price":1}`, `{"id":"b","price":0}`, `{"id":"c","price":2.5}`}
	invalid := []string{`{"id":"x","price":-1}`, `not json`, `{"price":3}`}
	for _, v := range valid {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("valid %s: %v", v, err)
		}
	}
	for _, v := range invalid {
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("invalid %s: got %v, want INVALID_RECORD", v, err)
		}
	}

	// A mixed batch: the reasons come back per record and nothing of it
	// is written.
	var mixed []*kgo.Record
	for _, v := range []string{valid[0], invalid[0], valid[1], invalid[1], invalid[2]} {
		mixed = append(mixed, &kgo.Record{Value: []byte(v)})
	}
	_, err = c.ProduceChecked(ctx, "orders", 0, mixed)
	var rej *sdk.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("mixed batch: got %v, want a RejectedError", err)
	}
	if len(rej.Records) != 3 || rej.Records[0].Index != 1 || rej.Records[1].Index != 3 || rej.Records[2].Index != 4 {
		t.Fatalf("rejected records %+v, want indexes 1, 3 and 4", rej.Records)
	}
	for i, want := range []string{"price", "json", "id"} {
		if !strings.Contains(strings.ToLower(rej.Records[i].Reason), want) {
			t.Errorf("reason for record %d is %q; it should mention %q", rej.Records[i].Index, rej.Records[i].Reason, want)
		}
	}
	t.Logf("rejections: %s", rej.Message)
	if got := readValues(t, c, "orders"); strings.Join(got, "|") != strings.Join(valid, "|") {
		t.Fatalf("stored %q, want only the valid records %q", got, valid)
	}

	// The plugin reports its use.
	p, err := adm.Plugin(ctx, "orders-schema")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != 1 || len(p.Versions[0].Stats) == 0 || p.Versions[0].Stats[0].Records < int64(len(valid)+len(invalid)) {
		t.Fatalf("describe: %+v", p)
	}
	// And in Prometheus.
	mresp, err := http.Get("http://" + n.Addrs().Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(body), `eddy_plugin_records_total{plugin="orders-schema",version="1"}`) {
		t.Fatalf("/metrics has no plugin figures:\n%s", body)
	}
	// Detach: everything goes through.
	if rs, err := c.Admin().AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "eddy.validator"}}, "orders"); err != nil || rs[0].Err != nil {
		t.Fatal(err, rs)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(invalid[1])}).FirstErr(); err != nil {
		t.Fatalf("after detaching, %q: %v", invalid[1], err)
	}
	// The node lets go of the detached plugin (its instances are freed).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p, err := adm.Plugin(ctx, "orders-schema")
		if err == nil && len(p.Versions[0].Stats) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after detaching, the node still runs the plugin: %+v, %v", p, err)
		}
	}

	// Unused now, it can be deleted.
	if err := adm.DeletePlugin(ctx, "orders-schema", 1); err != nil {
		t.Fatal(err)
	}
}

// TestPluginVersionsAndRefusals: versions are listed, pinned, protected
// while used, and bad modules are refused with the reason.
func TestPluginVersionsAndRefusals(t *testing.T) {
	pluginstest.SkipUnderRace(t)
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin}
	module := pluginstest.Example(t, "jsonschema")
	if _, err := adm.UploadPlugin(ctx, "s", module, ""); err != nil {
		t.Fatal(err)
	}
	// The same module again is not a new version.
	if v, err := adm.UploadPlugin(ctx, "s", module, ""); err != nil || v.Version != 1 {
		t.Fatalf("re-upload: %+v, %v", v, err)
	}
	// A different module is version 2.
	if v, err := adm.UploadPlugin(ctx, "s", pluginstest.Example(t, "avro"), ""); err != nil || v.Version != 2 {
		t.Fatalf("second version: %+v, %v", v, err)
	}
	c := n.Client(t, sdk.QUIC)
	resp, err := c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"eddy.validator": strPtr("s@1"),
		"eddy.validator.config.schema": strPtr(`{"type":"object"}`)}, "pinned")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	var aerr *sdk.AdminError
	if err := adm.DeletePlugin(ctx, "s", 1); !errors.As(err, &aerr) || aerr.StatusCode != 409 || !strings.Contains(aerr.Message, "pinned") {
		t.Fatalf("deleting a pinned version: %v", err)
	}
	if err := adm.DeletePlugin(ctx, "s", 2); err != nil {
		t.Fatalf("deleting an unused version: %v", err)
	}
	// Attaching what does not exist, or the wrong kind, is refused.
	resp, err = c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"eddy.validator": strPtr("nope")}, "bad")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(resp.ErrMessage, "not uploaded") {
		t.Fatalf("attaching a missing plugin: %v (%s)", err, resp.ErrMessage)
	}
	resp, err = c.Admin().CreateTopic(ctx, 1, 1, map[string]*string{"eddy.partitioner": strPtr("s")}, "bad")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(resp.ErrMessage, "not a partitioner") {
		t.Fatalf("attaching a validator as a partitioner: %v (%s)", err, resp.ErrMessage)
	}
	// Bad modules.
	for name, mod := range map[string][]byte{
		"truncated": module[:len(module)/2],
		"garbage":   []byte("definitely not wasm"),
	} {
		_, err := adm.UploadPlugin(ctx, name, mod, "")
		if !errors.As(err, &aerr) || aerr.StatusCode != 400 || aerr.Message == "" {
			t.Fatalf("%s module: %v", name, err)
		}
		t.Logf("%s: %s", name, aerr.Message)
	}
	for _, f := range []string{"forbidden_import.wasm", "abi_v2.wasm"} {
		mod, err := os.ReadFile(filepath.Join("..", "..", "plugins", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		_, err = adm.UploadPlugin(ctx, strings.TrimSuffix(f, ".wasm"), mod, "")
		if !errors.As(err, &aerr) || aerr.StatusCode != 400 {
			t.Fatalf("%s: %v", f, err)
		}
		t.Logf("%s: %s", f, aerr.Message)
	}
	ps, err := adm.Plugins(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "s" {
		t.Fatalf("list: %+v, %v", ps, err)
	}
}

// TestLoopingValidatorIsContained: a validator that never returns fails
// its topic's produces quickly while another topic keeps being served.
func TestLoopingValidatorIsContained(t *testing.T) {
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin}
	mod, err := os.ReadFile(filepath.Join("..", "..", "plugins", "testdata", "loop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UploadPlugin(ctx, "loop", mod, ""); err != nil {
		t.Fatal(err)
	}
	c := n.Client(t, sdk.QUIC)
	for topic, cfg := range map[string]map[string]*string{"looped": {"eddy.validator": strPtr("loop")}, "plain": nil} {
		resp, err := c.Admin().CreateTopic(ctx, 1, 1, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		var last error
		for range 8 {
			start := time.Now()
			_, last = c.ProduceChecked(ctx, "looped", 0, []*kgo.Record{{Value: []byte("x")}})
			if time.Since(start) > 10*time.Second {
				done <- fmt.Errorf("a produce to the looping validator's topic took %v", time.Since(start))
				return
			}
		}
		done <- last
	}()
	plain, err := c.NewKgo(kgo.DefaultProduceTopic("plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for i := range 200 {
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("the plain topic stopped serving: %v", err)
		}
	}
	err = <-done
	if !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce to the looping validator's topic: %v, want POLICY_VIOLATION", err)
	}
	p, err := adm.Plugin(ctx, "loop")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions[0].Stats) == 0 || !p.Versions[0].Stats[0].Failed {
		t.Fatalf("after repeated timeouts the plugin should be marked failed: %+v", p.Versions[0].Stats)
	}
	t.Logf("loop plugin: %+v", p.Versions[0].Stats[0])
}

func strPtr(s string) *string { return &s }

// readValues reads every record of a single-partition topic's partition 0.
func readValues(t *testing.T, c *sdk.Client, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := c.Admin().ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []string
	if end.Offset == 0 {
		return nil
	}
	err = c.Consume(ctx, topic, func(r *kgo.Record) error {
		out = append(out, string(r.Value))
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(int(end.Offset)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeyPrefixPartitioner: the SDK (over QUIC) runs the topic's
// partitioner plugin and places every key where the broker expects it;
// with enforcement on, kcat records placed elsewhere are refused and those
// placed right are stored.
func TestKeyPrefixPartitioner(t *testing.T) {
	pluginstest.SkipUnderRace(t)
	kcat := kcatPath(t)
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := &sdk.ClusterAdmin{URL: "http://" + n.Addrs().Admin}
	if _, err := adm.UploadPlugin(ctx, "regions", pluginstest.Example(t, "keyprefix"), ""); err != nil {
		t.Fatal(err)
	}
	c := n.Client(t, sdk.QUIC)
	resp, err := c.Admin().CreateTopic(ctx, 4, 1, map[string]*string{
		"eddy.partitioner":                 strPtr("regions"),
		"eddy.partitioner.config.prefixes": strPtr("eu-=0,us-=1"),
		"eddy.partitioner.enforce":         strPtr("reject"),
	}, "placed")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	wp, err := wasmpart.New(ctx, c, adm)
	if err != nil {
		t.Fatal(err)
	}
	defer wp.Close(context.Background())
	if err := wp.Prepare(ctx, "placed"); err != nil {
		t.Fatal(err)
	}
	cl, err := c.NewKgo(kgo.DefaultProduceTopic("placed"), kgo.RecordPartitioner(wp))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys := []string{"eu-paris", "eu-berlin", "us-ohio", "us-texas", "ap-tokyo", "x", "other-key"}
	placed := map[string]int32{}
	for _, k := range keys {
		rs := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(k)})
		if err := rs.FirstErr(); err != nil {
			t.Fatalf("SDK produce of %s: %v (the broker disagrees with the SDK's placement)", k, err)
		}
		placed[k] = rs[0].Record.Partition
	}
	if placed["eu-paris"] != 0 || placed["eu-berlin"] != 0 || placed["us-ohio"] != 1 || placed["us-texas"] != 1 {
		t.Fatalf("prefixed keys placed %v", placed)
	}
	// kcat: a key in its right partition is stored, in the wrong one
	// refused.
	produce := func(key string, partition int32) error {
		cmd := exec.CommandContext(ctx, kcat, "-b", n.Addrs().Kafka, "-P", "-t", "placed", "-p", fmt.Sprint(partition), "-K", ":", "-X", "message.send.max.retries=0")
		cmd.Stdin = strings.NewReader(key + ":v\n")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "Delivery failed") || strings.Contains(string(out), "ERROR") {
			return fmt.Errorf("kcat: %v: %s", err, out)
		}
		return nil
	}
	if err := produce("eu-lyon", 0); err != nil {
		t.Fatalf("kcat record in the right partition: %v", err)
	}
	err = produce("eu-lyon", 2)
	if err == nil || !strings.Contains(err.Error(), "failed to validate record") {
		t.Fatalf("kcat record in the wrong partition: %v, want it refused as an invalid record", err)
	}
	t.Logf("kcat, wrong partition: %v", err)
	// Every stored record is where the partitioner puts it.
	ends, err := c.Admin().ListEndOffsets(ctx, "placed")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	if total != len(keys)+1 {
		t.Fatalf("%d records stored, want %d", total, len(keys)+1)
	}
}
