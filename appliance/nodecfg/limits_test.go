package nodecfg

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	if l.MaxPreAuthFrameBytes != 512<<10 || l.MaxConnectionsPerIP != 512 || l.MaxStreamsPerQUICConnection != 1024 ||
		l.MaxRecordsPerBatch != 250_000 || l.MaxDecompressedBytes != 64<<20 || l.MinFreeDiskBytes != 512<<20 || l.MinTransferRate != 64<<10 {
		t.Fatalf("limit defaults: %+v", l)
	}
	hs, frame, write, idle := l.Timeouts()
	if hs != 10*time.Second || frame != 30*time.Second || write != 30*time.Second || idle != 10*time.Minute {
		t.Fatalf("timeouts %s %s %s %s", hs, frame, write, idle)
	}
	c, err = Parse([]byte("limits:\n  idle_timeout: 0s\n  frame_timeout: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, frame, _, idle := c.Limits.Timeouts(); frame != 2*time.Second || idle != 0 {
		t.Fatalf("frame %s idle %s, want 2s and 0 (never)", frame, idle)
	}
}

func TestLimitsErrorsNameTheField(t *testing.T) {
	for yaml, want := range map[string]string{
		"limits:\n  max_pre_auth_frame_bytes: 100\n":       "limits.max_pre_auth_frame_bytes",
		"limits:\n  max_pre_auth_frame_bytes: 209715200\n": "limits.max_pre_auth_frame_bytes",
		"limits:\n  max_connections_per_ip: -1\n":          "limits.max_connections_per_ip",
		"limits:\n  max_streams_per_quic_connection: -5\n": "limits.max_streams_per_quic_connection",
		"limits:\n  max_records_per_batch: -1\n":           "limits.max_records_per_batch",
		"limits:\n  max_decompressed_bytes: 1000\n":        "limits.max_decompressed_bytes",
		"limits:\n  min_free_disk_bytes: -1\n":             "limits.min_free_disk_bytes",
		"limits:\n  min_transfer_rate_bytes: -1\n":         "limits.min_transfer_rate_bytes",
		"limits:\n  frame_timeout: soon\n":                 "limits.frame_timeout",
		"limits:\n  write_timeout: 0s\n":                   "limits.write_timeout",
		"limits:\n  handshake_timeout: -1s\n":              "limits.handshake_timeout",
		"limits:\n  idle_timeout: forever\n":               "limits.idle_timeout",
	} {
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error naming %s", yaml, err, want)
		}
	}
}
