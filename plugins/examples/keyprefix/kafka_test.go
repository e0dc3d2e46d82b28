//go:build !wasip1

package main

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMatchesKafkaClient: keys without a prefix land where franz-go's
// Kafka-compatible key partitioner puts them.
func TestMatchesKafkaClient(t *testing.T) {
	if err := configure(map[string]string{"prefixes": "zz-=0"}); err != nil {
		t.Fatal(err)
	}
	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 3, 7, 64} {
		for i := range 500 {
			k := fmt.Sprintf("key-%d", i*7919)
			want := kafka.Partition(&kgo.Record{Key: []byte(k)}, n)
			if got := partition(pdkRecord(k), n); got != want {
				t.Fatalf("key %q of %d partitions: %d, want %d", k, n, got, want)
			}
		}
	}
}
