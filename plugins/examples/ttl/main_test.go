package main

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/eddybroker/eddy/plugins/pdk/pdktest"
)

func rec(ts int64, headers ...string) abi.Record {
	r := abi.Record{Timestamp: ts, Value: []byte("v")}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, abi.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

func TestRetain(t *testing.T) {
	pdktest.Init(t, map[string]string{})
	const now = 100_000
	for _, tc := range []struct {
		name string
		r    abi.Record
		want bool
	}{
		{"no header never expires", rec(0), false},
		{"duration passed", rec(now-30_000, "ttl", "30s"), true},
		{"duration not yet", rec(now-29_999, "ttl", "30s"), false},
		{"milliseconds passed", rec(now-500, "ttl", "500"), true},
		{"milliseconds not yet", rec(now-499, "ttl", "500"), false},
		{"compound duration", rec(now-90_000, "ttl", "1m30s"), true},
		{"zero expires at once", rec(now, "ttl", "0"), true},
		{"last header wins", rec(now-1000, "ttl", "1s", "ttl", "1h"), false},
		{"future timestamp", rec(now+5000, "ttl", "1s"), false},
		{"negative timestamp never expires", rec(-1, "ttl", "0"), false},
		{"invalid value counts as absent", rec(0, "ttl", "soon"), false},
		{"negative ttl counts as absent", rec(0, "ttl", "-5s"), false},
		{"null header value counts as absent", abi.Record{Timestamp: 0, Headers: []abi.Header{{Key: "ttl"}}}, false},
		{"other header ignored", rec(0, "ttl2", "0"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pdktest.Retain(t, now, tc.r)[0]; got != tc.want {
				t.Fatalf("expired = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDefaultTTLAndHeaderName(t *testing.T) {
	pdktest.Init(t, map[string]string{"default_ttl": "1h", "header": "x-ttl"})
	const hour = 3_600_000
	got := pdktest.Retain(t, 10*hour,
		rec(9*hour),                   // default: exactly an hour old
		rec(9*hour+1),                 // default: not yet
		rec(10*hour-10, "x-ttl", "5"), // own TTL
		rec(0, "x-ttl", "bogus"),      // invalid: default applies
		rec(9*hour+1, "ttl", "0"),     // not the configured header
	)
	want := []bool{true, false, true, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: expired = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{"default_ttl": "a week"}, "default_ttl"},
		{map[string]string{"default_ttl": "-1"}, "default_ttl"},
		{map[string]string{"header": ""}, "header may not be empty"},
		{map[string]string{"default": "1s"}, `unknown key "default"`},
	} {
		err := pdktest.TryInit(tc.cfg)
		if pdktest.StatusOf(err) != abi.StatusInitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want init failed with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestDoesNotAllocateOnceCached(t *testing.T) {
	if err := configure(pdk.Config{}); err != nil {
		t.Fatal(err)
	}
	r := pdk.Record{Timestamp: 1, Headers: []pdk.Header{{Key: []byte("ttl"), Value: []byte("30s")}}}
	expired(r, 2)
	if n := testing.AllocsPerRun(100, func() { expired(r, 2) }); n != 0 {
		t.Fatalf("%v allocations per record, want 0", n)
	}
}
