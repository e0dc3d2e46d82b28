package pdktest_test

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/eddybroker/eddy/plugins/pdk/pdktest"
)

// The handlers of a tiny plugin, registered as a plugin's init would.
var minLen int

func init() {
	pdk.OnInit(func(c pdk.Config) error {
		if err := c.CheckKeys("min"); err != nil {
			return err
		}
		minLen = len(c["min"])
		return nil
	})
	pdk.OnValidate(func(r pdk.Record) pdk.Verdict {
		if len(r.Value) < minLen {
			pdk.Log(pdk.LevelDebug, "short value")
			return pdk.Reject(3, "value: too short")
		}
		if string(r.Value) == "panic" {
			panic("asked to")
		}
		return pdk.Accept()
	})
	pdk.OnPartition(func(r pdk.Record, n int) int { return len(r.Key) % n })
	pdk.OnRetain(func(r pdk.Record, now int64) bool { return r.Timestamp < now })
}

func TestValidate(t *testing.T) {
	pdktest.Init(t, map[string]string{"min": "xxx"})
	got := pdktest.Validate(t, pdktest.Value("abcd"), pdktest.KeyValue("k", "ab"))
	want := []abi.Verdict{{}, {Reject: true, Code: 3, Reason: "value: too short"}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestTryInit(t *testing.T) {
	err := pdktest.TryInit(map[string]string{"max": "1"})
	if pdktest.StatusOf(err) != abi.StatusInitFailed || !strings.Contains(err.Error(), `unknown key "max"`) {
		t.Fatalf("got %v, want init failed naming the key", err)
	}
}

func TestTryValidatePanic(t *testing.T) {
	pdktest.Init(t, nil)
	_, err := pdktest.TryValidate(pdktest.Value("ok"), pdktest.Value("panic"))
	if pdktest.StatusOf(err) != abi.StatusPanic || !strings.Contains(err.Error(), "record 1: panic: asked to") {
		t.Fatalf("got %v, want a panic on record 1", err)
	}
}

func TestPartition(t *testing.T) {
	got := pdktest.Partition(t, 3, pdktest.KeyValue("", "x"), pdktest.KeyValue("ab", "x"), pdktest.KeyValue("abcd", "x"))
	if want := []int32{0, 2, 1}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRetain(t *testing.T) {
	got := pdktest.Retain(t, 10, abi.Record{Timestamp: 9}, abi.Record{Timestamp: 10})
	if !got[0] || got[1] {
		t.Fatalf("got %v, want [true false]", got)
	}
}
