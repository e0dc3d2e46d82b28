package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeOption configures Consume.
type ConsumeOption func(*consumeOptions)

type consumeOptions struct {
	start      kgo.Offset
	partitions map[int32]kgo.Offset
	maxRecords int
	kgoOpts    []kgo.Opt
}

// FromBeginning starts at each partition's earliest offset. The default
// is the end: only records produced from now on.
func FromBeginning() ConsumeOption {
	return func(o *consumeOptions) { o.start = kgo.NewOffset().AtStart() }
}

// AtOffsets reads only the given partitions, each from the given offset.
func AtOffsets(offsets map[int32]int64) ConsumeOption {
	return func(o *consumeOptions) {
		o.partitions = map[int32]kgo.Offset{}
		for p, off := range offsets {
			o.partitions[p] = kgo.NewOffset().At(off)
		}
	}
}

// MaxRecords stops after n records; 0 (the default) reads until ctx ends.
func MaxRecords(n int) ConsumeOption {
	return func(o *consumeOptions) { o.maxRecords = n }
}

// WithConsumerKgoOptions passes options to the consumer's kgo client.
func WithConsumerKgoOptions(opts ...kgo.Opt) ConsumeOption {
	return func(o *consumeOptions) { o.kgoOpts = append(o.kgoOpts, opts...) }
}

// ErrStop, returned by a Consume callback, ends Consume without error.
var ErrStop = errors.New("sdk: stop consuming")

// Consume reads topic and calls fn for every record, in offset order
// within each partition, until ctx ends, fn returns an error (ErrStop to
// stop cleanly), or MaxRecords is reached. It uses its own kgo client over
// the same transport; it does not join a consumer group.
func (c *Client) Consume(ctx context.Context, topic string, fn func(*kgo.Record) error, opts ...ConsumeOption) error {
	o := consumeOptions{start: kgo.NewOffset().AtEnd()}
	for _, opt := range opts {
		opt(&o)
	}
	var kopts []kgo.Opt
	if o.partitions != nil {
		kopts = append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: o.partitions}))
	} else {
		kopts = append(kopts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(o.start))
	}
	cl, err := c.NewKgo(append(kopts, o.kgoOpts...)...)
	if err != nil {
		return fmt.Errorf("consume %s: %w", topic, err)
	}
	defer cl.Close()
	seen := 0
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("sdk: consume %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		for it := fetches.RecordIter(); !it.Done(); {
			if err := fn(it.Next()); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
			seen++
			if o.maxRecords > 0 && seen >= o.maxRecords {
				return nil
			}
		}
	}
}
