package broker

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// The seed corpora of FuzzDecodeRequest (here) and FuzzServeFrame (package
// appliance) are generated, so they can be regenerated when kmsg or the
// supported versions change:
//
//	go test -run TestWriteFuzzCorpus ./appliance/broker/ -args -write-fuzz-corpus
var writeFuzzCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the generated seed corpora under testdata/fuzz")

// fuzzSeed is one (key, version, rest) input; see fuzzFrame.
type fuzzSeed struct {
	name         string
	key, version int16
	rest         []byte
}

// requestSeeds returns a real request, filled with plausible values, for
// every version of every API the broker serves, in the
// (key, version, rest) form; and raw frames (key -1) for the versions and
// keys it does not serve.
func requestSeeds() []fuzzSeed {
	var seeds []fuzzSeed
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		name := kmsg.NameForKey(key)
		r, served := supported[key]
		if !served {
			seeds = append(seeds, fuzzSeed{name: fmt.Sprintf("raw-%s-v%d", name, req.MaxVersion()), key: -1, rest: seedFrame(key, req.MaxVersion())})
			continue
		}
		for v := r.min; v <= r.max; v++ {
			frame := seedFrame(key, v)
			seeds = append(seeds, fuzzSeed{name: fmt.Sprintf("%s-v%d", name, v), key: key, version: v, rest: frame[14:]})
		}
		for _, v := range []int16{r.min - 1, r.max + 1} {
			if v >= 0 && v <= req.MaxVersion() {
				seeds = append(seeds, fuzzSeed{name: fmt.Sprintf("raw-%s-v%d", name, v), key: -1, rest: seedFrame(key, v)})
			}
		}
	}
	return seeds
}

// seedFrame encodes a filled request of key at version v with header
// client id "fuzz" and correlation id fuzzCorrID (14 header bytes before
// the tags or body).
func seedFrame(key, v int16) []byte {
	req := kmsg.RequestForKey(key)
	// A group of its own per seed: a seed served by a real broker then
	// does not wait for the members earlier seeds left behind.
	seedGroup = fmt.Sprintf("fuzz-group-%d-%d", key, v)
	fillSeed(reflect.ValueOf(req).Elem(), "", 0)
	if dt, ok := req.(*kmsg.DeleteTopicsRequest); ok {
		// Deleting the seeds' topic would make the next seeds wait for it.
		dt.TopicNames = []string{"fuzz-gone"}
		dt.Topics[0].Topic = kmsg.StringPtr("fuzz-gone")
	}
	req.SetVersion(v)
	return appendRequest(nil, req, fuzzCorrID, "fuzz")
}

// fillSeed gives every field of a kmsg request a plausible value: one
// element per array, the topic "fuzz" and group "fuzz-group", a valid
// record batch, consumer protocol metadata, and short timeouts so that a
// seed served by a real broker does not long-poll.
func fillSeed(v reflect.Value, name string, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "Version" || f.Name == "UnknownTags" {
				continue
			}
			field := f.Name
			if strings.HasSuffix(t.Name(), "Config") || strings.HasSuffix(t.Name(), "Configs") {
				field = "Config" + field
			}
			fillSeed(v.Field(i), field, depth+1)
		}
	case reflect.String:
		if v.String() == "" {
			v.SetString(seedString(name))
		}
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.String && v.IsNil() && !strings.Contains(name, "Transaction") {
			s := seedString(name)
			v.Set(reflect.ValueOf(&s))
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch name {
		case "TimeoutMillis", "MaxWaitMillis", "ThrottleMillis":
			v.SetInt(100)
		case "SessionTimeoutMillis", "RebalanceTimeoutMillis":
			v.SetInt(6000)
		case "NumPartitions", "ReplicationFactor":
			v.SetInt(1)
		case "Count":
			v.SetInt(2)
		case "Acks":
			v.SetInt(-1)
		case "MaxBytes", "PartitionMaxBytes":
			v.SetInt(1 << 20)
		}
	case reflect.Slice:
		et := v.Type().Elem()
		switch {
		case et.Kind() == reflect.Uint8:
			v.SetBytes(seedBytes(name))
		case depth > 6:
		case et.Kind() == reflect.Struct:
			p := reflect.New(et)
			if m := p.MethodByName("Default"); m.IsValid() {
				m.Call(nil)
			}
			fillSeed(p.Elem(), name, depth+1)
			v.Set(reflect.Append(v, p.Elem()))
		case et.Kind() == reflect.String:
			v.Set(reflect.Append(v, reflect.ValueOf(seedString(name)).Convert(et)))
		case et.Kind() >= reflect.Int8 && et.Kind() <= reflect.Int64:
			v.Set(reflect.Append(v, reflect.Zero(et)))
		}
	}
}

// seedGroup is the group id fillSeed uses.
var seedGroup = "fuzz-group"

func seedString(field string) string {
	switch {
	case field == "ConfigName":
		return "retention.ms"
	case field == "ConfigValue":
		return "86400000"
	case strings.Contains(field, "Topic"), field == "ResourceName":
		return "fuzz"
	case strings.Contains(field, "Group"):
		return seedGroup
	case field == "ProtocolType":
		return "consumer"
	case field == "Protocol", field == "Name" || strings.HasSuffix(field, "Protocol"):
		return "range"
	case strings.Contains(field, "Mechanism"):
		return "PLAIN"
	case strings.Contains(field, "Principal"):
		return "User:fuzz"
	case field == "Host":
		return "*"
	case strings.Contains(field, "MemberID"), strings.Contains(field, "InstanceID"), field == "Rack":
		return ""
	}
	return "fuzz"
}

func seedBytes(field string) []byte {
	switch field {
	case "Records":
		return partlogtest.Values(1700000000000, []byte("v0"), []byte("v1"))
	case "Metadata", "ProtocolMetadata":
		md := kmsg.NewConsumerMemberMetadata()
		md.Topics = []string{"fuzz"}
		return md.AppendTo(nil)
	case "Assignment", "MemberAssignment":
		a := kmsg.NewConsumerMemberAssignment()
		tp := kmsg.NewConsumerMemberAssignmentTopic()
		tp.Topic, tp.Partitions = "fuzz", []int32{0}
		a.Topics = append(a.Topics, tp)
		return a.AppendTo(nil)
	case "SASLAuthBytes":
		return []byte("\x00fuzz\x00fuzz-password")
	}
	return []byte("fuzz")
}

// writeSeeds writes seeds as Go fuzz corpus files of a (int16, int16,
// []byte) target into dir, replacing earlier generated ones (gen-*); the
// regression inputs the fuzzer found stay.
func writeSeeds(t *testing.T, dir string, seeds []fuzzSeed) {
	old, _ := filepath.Glob(filepath.Join(dir, "gen-*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		if err := os.WriteFile(filepath.Join(dir, "gen-"+s.name), s.file(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// file is the seed as a Go fuzz corpus file.
func (s fuzzSeed) file() []byte {
	return fmt.Appendf(nil, "go test fuzz v1\nint16(%d)\nint16(%d)\n[]byte(%s)\n", s.key, s.version, strconv.Quote(string(s.rest)))
}

// checkSeeds fails when the generated seeds in dir are not exactly seeds:
// the corpus was not regenerated after kmsg or supported changed.
func checkSeeds(t *testing.T, dir string, seeds []fuzzSeed) {
	t.Helper()
	have, _ := filepath.Glob(filepath.Join(dir, "gen-*"))
	stale := len(have) != len(seeds)
	for _, s := range seeds {
		b, err := os.ReadFile(filepath.Join(dir, "gen-"+s.name))
		if err != nil || !bytes.Equal(b, s.file()) {
			t.Errorf("%s: gen-%s is missing or out of date", dir, s.name)
			stale = true
		}
	}
	if stale {
		t.Fatalf("%s holds %d generated seeds, want %d; regenerate with -write-fuzz-corpus", dir, len(have), len(seeds))
	}
}

// TestWriteFuzzCorpus regenerates the request seed corpora (with
// -write-fuzz-corpus); without the flag it checks that every seed still
// decodes as what it claims to be and that the checked-in corpora are
// what it would write.
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := requestSeeds()
	for _, s := range seeds {
		frame := fuzzFrame(s.key, s.version, s.rest)
		h, err := parseHeaderPrefix(frame)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		req := kmsg.RequestForKey(h.key)
		req.SetVersion(h.version)
		if req.IsFlexible() {
			if err := skipHeaderTags(frame, &h); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		if err := req.ReadFrom(frame[h.bodyOffset:]); err != nil {
			t.Fatalf("%s: seed does not decode: %v", s.name, err)
		}
		if s.key >= 0 && binary.BigEndian.Uint32(frame[4:]) != fuzzCorrID {
			t.Fatalf("%s: correlation id", s.name)
		}
	}
	dirs := []string{filepath.Join("testdata", "fuzz", "FuzzDecodeRequest"), filepath.Join("..", "testdata", "fuzz", "FuzzServeFrame")}
	if !*writeFuzzCorpus {
		for _, dir := range dirs {
			checkSeeds(t, dir, seeds)
		}
		return
	}
	for _, dir := range dirs {
		writeSeeds(t, dir, seeds)
	}
	t.Logf("wrote %d seeds for FuzzDecodeRequest and FuzzServeFrame", len(seeds))
}
