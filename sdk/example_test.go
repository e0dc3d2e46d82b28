package sdk_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

// Connect over QUIC, write three records and read them back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client, err := sdk.Dial(ctx,
		sdk.WithBrokers(brokerAddr), // e.g. "127.0.0.1:9092"
		sdk.WithCAFile(caFile),      // e.g. "eddy-data/tls/ca.crt"
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The topic is created on first use (the broker's default).
	err = client.Produce(ctx,
		&kgo.Record{Topic: "greetings", Key: []byte("en"), Value: []byte("hello")},
		&kgo.Record{Topic: "greetings", Key: []byte("en"), Value: []byte("hi")},
		&kgo.Record{Topic: "greetings", Key: []byte("en"), Value: []byte("hey")},
	)
	if err != nil {
		log.Fatal(err)
	}

	err = client.Consume(ctx, "greetings", func(r *kgo.Record) error {
		fmt.Printf("%s %s (offset %d)\n", r.Key, r.Value, r.Offset)
		return nil
	}, sdk.FromBeginning(), sdk.MaxRecords(3))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// en hello (offset 0)
	// en hi (offset 1)
	// en hey (offset 2)
}

// The kgo client underneath is there for everything else: here an
// asynchronous produce with a callback.
func ExampleClient_Kgo() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAFile(caFile))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	done := make(chan struct{})
	client.Kgo().Produce(ctx, &kgo.Record{Topic: "async", Value: []byte("fire")}, func(r *kgo.Record, err error) {
		defer close(done)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("acknowledged at offset", r.Offset)
	})
	<-done
	// Output: acknowledged at offset 0
}

// Join a consumer group: the group's members share the topic's
// partitions, and each record's offset is committed once the callback
// has returned for it, so a restarted member carries on where the group
// stopped.
func ExampleClient_NewGroupConsumer() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAFile(caFile))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	err = client.Produce(ctx,
		&kgo.Record{Topic: "clicks", Key: []byte("home"), Value: []byte("click 1")},
		&kgo.Record{Topic: "clicks", Key: []byte("home"), Value: []byte("click 2")},
	)
	if err != nil {
		log.Fatal(err)
	}

	consumer, err := client.NewGroupConsumer("click-counter", []string{"clicks"},
		sdk.StartFromBeginning(), // where a new group starts; later runs resume from its commits
		sdk.WithAssignors(sdk.CooperativeSticky),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close() // leaves the group, committing what was processed
	seen := 0
	err = consumer.Run(ctx, func(r *kgo.Record) error {
		fmt.Printf("%s: %s\n", r.Key, r.Value)
		if seen++; seen == 2 {
			return sdk.ErrStop
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// home: click 1
	// home: click 2
}
