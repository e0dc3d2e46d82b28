package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

// maxLineBytes bounds one input line (one record).
const maxLineBytes = 16 << 20

func newProduceCmd(g *globals) *cobra.Command {
	var (
		key, keySep, file, compression string
		partition                      int32
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records to a topic, one per input line",
		Long: `Write records to a topic, one per line of standard input (or --file).

Each line becomes one record's value. --key gives every record the same key;
--key-separator splits each line into key and value at the first separator.
Records with the same key go to the same partition. The topic is created on
first use when the broker allows it. A summary is printed at the end.`,
		Example: `  echo hello | eddy produce greetings
  eddy produce orders --file orders.txt --compression zstd
  printf 'user1:clicked\nuser2:scrolled\n' | eddy produce events --key-separator :`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			codec, err := compressionCodec(compression)
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ctx := cmd.Context()
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation()}
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			sum, err := produceLines(ctx, c, args[0], in, cmd.ErrOrStderr(), lineParser{key: key, sep: keySep, partition: partition}, opts)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "produced %d records (%s) to %s in %s", sum.records, humanBytes(sum.bytes), args[0], sum.elapsed.Round(time.Millisecond))
			if s := sum.elapsed.Seconds(); s > 0 && sum.records > 0 {
				fmt.Fprintf(out, ": %.0f records/s, %s/s", float64(sum.records)/s, humanBytes(int64(float64(sum.bytes)/s)))
			}
			fmt.Fprintln(out)
			if sum.failed > 0 {
				return fmt.Errorf("%d records failed: %w", sum.failed, err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&key, "key", "k", "", "key for every record")
	f.StringVarP(&keySep, "key-separator", "K", "", "split each line into key and value at the first occurrence of this")
	f.Int32VarP(&partition, "partition", "p", -1, "write to this partition (default: by key hash, or spread when there is no key)")
	f.StringVarP(&file, "file", "f", "", "read records from this file instead of standard input")
	f.StringVar(&compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	return cmd
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

type lineParser struct {
	key, sep  string
	partition int32
}

func (p lineParser) record(topic, line string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: []byte(line)}
	if p.sep != "" {
		if k, v, ok := strings.Cut(line, p.sep); ok {
			r.Key, r.Value = []byte(k), []byte(v)
		}
	} else if p.key != "" {
		r.Key = []byte(p.key)
	}
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	return r
}

type produceSummary struct {
	records, failed int64
	bytes           int64
	elapsed         time.Duration
}

// produceLines produces every line of in asynchronously and waits for all
// acknowledgements. It returns the first produce error.
func produceLines(ctx context.Context, c *sdk.Client, topic string, in io.Reader, stderr io.Writer, p lineParser, opts []kgo.Opt) (produceSummary, error) {
	cl, err := c.NewKgo(opts...)
	if err != nil {
		return produceSummary{}, err
	}
	defer cl.Close()
	var (
		sum      produceSummary
		acked    atomic.Int64
		failed   atomic.Int64
		bytes    atomic.Int64
		firstErr error
		errOnce  sync.Once
		mu       sync.Mutex
		rejected []rejectedLine
	)
	start := time.Now()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for line := 1; sc.Scan(); line++ {
		r := p.record(topic, sc.Text())
		size := int64(len(r.Key) + len(r.Value))
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				if errors.Is(err, kerr.InvalidRecord) {
					mu.Lock()
					rejected = append(rejected, rejectedLine{line: line, record: r})
					mu.Unlock()
				}
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			acked.Add(1)
			bytes.Add(size)
		})
	}
	scanErr := sc.Err()
	if ferr := cl.Flush(ctx); ferr != nil && scanErr == nil {
		scanErr = ferr
	}
	if len(rejected) > 0 {
		explained, err := explainRejected(ctx, c, rejected, stderr)
		acked.Add(explained)
		failed.Add(-explained)
		if err != nil {
			firstErr = err
		}
	}
	sum.records, sum.failed, sum.bytes, sum.elapsed = acked.Load(), failed.Load(), bytes.Load(), time.Since(start)
	if firstErr != nil {
		return sum, firstErr
	}
	if scanErr != nil && !errors.Is(scanErr, context.Canceled) {
		return sum, fmt.Errorf("reading input: %w", scanErr)
	}
	return sum, nil
}

type rejectedLine struct {
	line   int
	record *kgo.Record
}

// maxExplained bounds how many rejected lines are explained one by one.
const maxExplained = 100

// explainRejected learns why a topic's validator refused lines: the Kafka
// client reports only INVALID_RECORD, so each refused line is sent again
// alone, in a request whose answer carries the validator's reason. A line
// the validator accepts this time is written (and counted as written).
func explainRejected(ctx context.Context, c *sdk.Client, lines []rejectedLine, stderr io.Writer) (written int64, err error) {
	slices.SortFunc(lines, func(a, b rejectedLine) int { return a.line - b.line })
	for i, l := range lines {
		if i == maxExplained {
			fmt.Fprintf(stderr, "... and %d more lines rejected\n", len(lines)-i)
			break
		}
		_, perr := c.ProduceChecked(ctx, l.record.Topic, l.record.Partition, []*kgo.Record{l.record})
		var rej *sdk.RejectedError
		switch {
		case perr == nil:
			written++
		case errors.As(perr, &rej) && len(rej.Records) > 0:
			fmt.Fprintf(stderr, "line %d rejected: %s\n", l.line, rej.Records[0].Reason)
			err = rej
		default:
			fmt.Fprintf(stderr, "line %d rejected: %v\n", l.line, perr)
			err = perr
		}
	}
	return written, err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
