package nodecfg

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEmptyIsDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 1 || c.DataDir != DefaultDataDir || c.Listen.Kafka != DefaultKafkaAddr || !*c.Topics.AutoCreate || c.Topics.DefaultPartitions != 3 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "node_idd: 2\n", "field node_idd not found"},
		{"bad listen", "listen:\n  kafka: nope\n", "listen.kafka"},
		{"plaintext kafka off loopback", "listen:\n  kafka: 0.0.0.0:9092\n", "set kafka_tls: true"},
		{"admin off loopback", "listen:\n  admin: 10.0.0.1:9644\n", "set admin_token"},
		{"unspecified advertise", "advertise:\n  kafka: 0.0.0.0:9092\n", "advertise.kafka"},
		{"bad level", "log:\n  level: loud\n", "log.level"},
		{"small frames", "limits:\n  max_frame_bytes: 10\n", "limits.max_frame_bytes"},
		{"bad interval", "topics:\n  retention_check_interval: often\n", "topics.retention_check_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseInsecureAllowsExposedListeners(t *testing.T) {
	c, err := Parse([]byte("insecure: true\nlisten:\n  kafka: 0.0.0.0:9092\n  admin: 0.0.0.0:9644\ntopics:\n  auto_create: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Topics.AutoCreate {
		t.Fatal("auto_create: false was not kept apart from unset")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("node_id: 3\nlisten:\n  quic: 127.0.0.1:1\n"))
	f.Add([]byte("topics:\n  defaults:\n    retention.ms: '5'\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("parsed config fails validation: %v", err)
			}
		}
	})
}

// TestExamplesParse keeps every node config example in firmware-config valid.
func TestExamplesParse(t *testing.T) {
	files, err := filepath.Glob("../../firmware-config/examples/*/node*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestClusterConfig(t *testing.T) {
	m, err := ParseInitialCluster("1=10.0.0.1:7100, 2=10.0.0.2:7100,3=10.0.0.3:7100")
	if err != nil || len(m) != 3 || m[2] != "10.0.0.2:7100" {
		t.Fatalf("parse: %v %v", m, err)
	}
	for _, bad := range []string{"", "x=1.2.3.4:1", "0=1.2.3.4:1", "1=a:1,1=b:2", "1"} {
		if _, err := ParseInitialCluster(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	tests := []struct{ yaml, want string }{
		{"node_id: 4\ninitial_cluster: {1: 'a:1', 2: 'b:1', 3: 'c:1'}\n", "set join"},
		{"node_id: 1\ninitial_cluster: {1: 'a:1'}\njoin: http://x:9644\n", "do not join"},
		{"node_id: 4\ninitial_cluster: {1: 'a:1'}\njoin: x:9644\n", "not an admin URL"},
		{"initial_cluster: {1: '0.0.0.0:7100'}\n", "initial_cluster[1]"},
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
	if _, err := Parse([]byte("node_id: 4\ninitial_cluster: {1: 'a:1'}\njoin: http://a:9644\n")); err != nil {
		t.Fatalf("a joining node: %v", err)
	}
}
