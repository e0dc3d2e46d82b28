package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

func newConsumeCmd(g *globals) *cobra.Command {
	var (
		fromBeginning bool
		partition     int32
		offset        int64
		maxRecords    int
		format        string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read records from a topic, one per output line",
		Long: `Read records from a topic and print one per line until interrupted or --max
records have been read. By default only new records are shown; --from-beginning
starts at the oldest record kept, --partition and --offset start at a given
position of one partition.

--format value prints each record's value; --format json prints an object with
topic, partition, offset, timestamp (ms), key, value and headers (a key or
value that is not UTF-8 is given base64-encoded as key_base64 / value_base64).`,
		Example: `  eddy consume orders --from-beginning
  eddy consume orders --partition 2 --offset 1000 --max 10 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "value" && format != "json" {
				return fmt.Errorf("--format %q: want value or json", format)
			}
			var opts []sdk.ConsumeOption
			switch {
			case cmd.Flags().Changed("offset") && partition < 0:
				return errors.New("--offset needs --partition")
			case partition >= 0:
				start := offset
				if !cmd.Flags().Changed("offset") {
					start = -1 // kgo: -1 is the end, -2 the start
					if fromBeginning {
						start = -2
					}
				}
				opts = append(opts, sdk.AtOffsets(map[int32]int64{partition: start}))
			case fromBeginning:
				opts = append(opts, sdk.FromBeginning())
			}
			if maxRecords > 0 {
				opts = append(opts, sdk.MaxRecords(maxRecords))
			}
			ctx := cmd.Context()
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			err = c.Consume(ctx, args[0], func(r *kgo.Record) error {
				return printRecord(out, r, format)
			}, opts...)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&fromBeginning, "from-beginning", "b", false, "start at the oldest record")
	f.Int32VarP(&partition, "partition", "p", -1, "read only this partition")
	f.Int64VarP(&offset, "offset", "o", 0, "start at this offset of --partition")
	f.IntVarP(&maxRecords, "max", "n", 0, "stop after this many records (0: run until interrupted)")
	f.StringVar(&format, "format", "value", "output format: value or json")
	return cmd
}

type jsonRecord struct {
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   int64             `json:"timestamp"`
	Key         *string           `json:"key,omitempty"`
	KeyBase64   string            `json:"key_base64,omitempty"`
	Value       *string           `json:"value,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func printRecord(w io.Writer, r *kgo.Record, format string) error {
	if format == "value" {
		_, err := fmt.Fprintf(w, "%s\n", r.Value)
		return err
	}
	jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
	jr.Key, jr.KeyBase64 = textOrBase64(r.Key)
	jr.Value, jr.ValueBase64 = textOrBase64(r.Value)
	for _, h := range r.Headers {
		if jr.Headers == nil {
			jr.Headers = map[string]string{}
		}
		jr.Headers[h.Key] = string(h.Value)
	}
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func textOrBase64(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}
