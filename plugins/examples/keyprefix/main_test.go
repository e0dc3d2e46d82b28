package main

import (
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/plugins/pdk"
	"github.com/eddybroker/eddy/plugins/pdk/pdktest"
)

// Vectors from Kafka's UtilsTest.testMurmur2.
func TestMurmur2(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := int32(murmur2([]byte(tc.in))); got != tc.want {
			t.Errorf("murmur2(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func pdkRecord(k string) pdk.Record { return pdk.Record{Key: []byte(k)} }

func key(k string) abi.Record { return abi.Record{Key: []byte(k)} }

func TestPartition(t *testing.T) {
	pdktest.Init(t, map[string]string{"prefixes": "eu-=0, us-=1,ap-=2, eu-west-=3"})
	got := pdktest.Partition(t, 6,
		key("eu-1"), key("us-2"), key("ap-x"), key("eu-west-9"), key("eu-"),
		abi.Record{}, key("foobar"), key(""), key("EU-1"),
	)
	want := []int32{
		0, 1, 2, 3, 0, // prefixes, longest first
		0,                                    // null key
		int32((-790332482 & 0x7fffffff) % 6), // murmur2("foobar")
		int32((int64(murmur2(nil)) & 0x7fffffff) % 6),            // empty key is hashed
		int32((int64(murmur2([]byte("EU-1"))) & 0x7fffffff) % 6), // prefixes are case-sensitive
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: partition %d, want %d", i, got[i], want[i])
		}
	}
}

func TestNullPartition(t *testing.T) {
	pdktest.Init(t, map[string]string{"prefixes": "a=0", "null_partition": "2"})
	if got := pdktest.Partition(t, 3, abi.Record{}); got[0] != 2 {
		t.Fatalf("null key: partition %d, want 2", got[0])
	}
}

func TestConfiguredPartitionMissing(t *testing.T) {
	pdktest.Init(t, map[string]string{"prefixes": "eu-=0,us-=5"})
	if got := pdktest.Partition(t, 2, key("eu-1"), key("x")); got[0] != 0 {
		t.Fatalf("got %v, want eu-1 in 0", got)
	}
	_, err := pdktest.TryPartition(2, key("eu-1"), key("us-1"))
	if pdktest.StatusOf(err) != abi.StatusHandlerError || !strings.Contains(err.Error(), "record 1: handler chose partition 5 of 2") {
		t.Fatalf("got %v, want a handler error for record 1", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{}, `"prefixes" is required`},
		{map[string]string{"prefixes": "eu-"}, `entry "eu-" is not prefix=partition`},
		{map[string]string{"prefixes": "=1"}, "empty prefix"},
		{map[string]string{"prefixes": "eu-=x"}, `"x" is not a partition number`},
		{map[string]string{"prefixes": "eu-=-1"}, `"-1" is not a partition number`},
		{map[string]string{"prefixes": "eu-=1,eu-=2"}, `prefix "eu-" appears twice`},
		{map[string]string{"prefixes": "eu-=1,"}, `entry "" is not prefix=partition`},
		{map[string]string{"prefixes": "a=1", "null_partition": "-1"}, "null_partition"},
		{map[string]string{"prefixes": "a=1", "prefix": "b=1"}, `unknown key "prefix"`},
	} {
		err := pdktest.TryInit(tc.cfg)
		if pdktest.StatusOf(err) != abi.StatusInitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want init failed with %q", tc.cfg, err, tc.want)
		}
	}
}

func TestPartitionDoesNotAllocate(t *testing.T) {
	if err := configure(map[string]string{"prefixes": "eu-=0,us-=1"}); err != nil {
		t.Fatal(err)
	}
	r := pdkRecord("some-key")
	if n := testing.AllocsPerRun(100, func() { partition(r, 7) }); n != 0 {
		t.Fatalf("%v allocations per record, want 0", n)
	}
}
