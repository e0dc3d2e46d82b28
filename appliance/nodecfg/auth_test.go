package nodecfg

import (
	"strings"
	"testing"
)

// TestSecureWhenExposed: every listener beyond loopback that does not
// encrypt or does not authenticate its clients refuses to start, with a
// message naming what to set; insecure: true lets each through, and a
// fully secured exposed node starts.
func TestSecureWhenExposed(t *testing.T) {
	const secured = "kafka_tls: true\nadmin_token: t\nauth:\n  quic: mtls\n  kafka: sasl\n"
	tests := []struct {
		name, yaml string
		want       []string // substrings of the refusal; none: it starts
	}{
		{"plaintext kafka", "listen:\n  kafka: 0.0.0.0:9092\n", []string{"listen.kafka", "set kafka_tls: true", "insecure: true"}},
		{"kafka over TLS, anonymous", "kafka_tls: true\nlisten:\n  kafka: 0.0.0.0:9092\n",
			[]string{"listen.kafka", "not authenticated", "auth.kafka: sasl", "auth.kafka: mtls", "insecure: true"}},
		{"anonymous quic", "listen:\n  quic: 10.0.0.1:9092\n",
			[]string{"listen.quic", "not authenticated", "auth.quic: mtls", "auth.quic: sasl", "insecure: true"}},
		{"open admin", "listen:\n  admin: 10.0.0.1:9644\n", []string{"listen.admin", "admin_token", "auth.admin_tls", "insecure: true"}},
		{"mtls without kafka_tls", "auth:\n  kafka: mtls\n", []string{"auth.kafka", "kafka_tls: true"}},
		{"unknown mode", "auth:\n  quic: password\n", []string{"auth.quic", "none, mtls or sasl"}},
		{"unknown mechanism", "auth:\n  sasl_mechanisms: [GSSAPI]\n", []string{"auth.sasl_mechanisms", "GSSAPI"}},
		{"user without password file", "auth:\n  users:\n    - name: alice\n", []string{"auth.users[0]", "password_file"}},
		{"admin_tls in a cluster without secret", "auth:\n  admin_tls: true\ninitial_cluster:\n  1: 127.0.0.1:7100\n  2: 127.0.0.1:7200\n",
			[]string{"auth.admin_tls", "cluster_secret"}},
		{"plaintext raft", secured + "listen:\n  raft: 10.0.0.1:7100\n", []string{"listen.raft", "cluster_secret", "mutual TLS", "insecure: true"}},
		{"raft with a cluster secret", secured + "cluster_secret: 0123456789abcdef0123\nlisten:\n  raft: 10.0.0.1:7100\n", nil},
		{"secured and exposed", secured + "listen:\n  quic: 0.0.0.0:9092\n  kafka: 0.0.0.0:9092\n  admin: 0.0.0.0:9644\n", nil},
		{"admin by client certificate", "auth:\n  admin_tls: true\nlisten:\n  admin: 0.0.0.0:9644\n", nil},
		{"kafka by client certificate", "kafka_tls: true\nauth:\n  kafka: mtls\nlisten:\n  kafka: 0.0.0.0:9092\n", nil},
		{"insecure lab", "insecure: true\nlisten:\n  quic: 0.0.0.0:9092\n  kafka: 0.0.0.0:9092\n  admin: 0.0.0.0:9644\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("started, want a refusal")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not mention %q", err, w)
				}
			}
		})
	}
}
