package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
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
		group         string
		assignors     []string
		instanceID    string
		session       time.Duration
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
value that is not UTF-8 is given base64-encoded as key_base64 / value_base64).

--group joins a consumer group instead: the group's members share the topic's
partitions, each reading only its own, and the offset of every record printed is
committed (every 5 s, and before partitions move or the command exits), so the
group carries on where it stopped, reading each record at least once. With
--group, --from-beginning applies only to partitions the group has no committed
offset for. Partition assignments and revocations are reported on stderr.`,
		Example: `  eddy consume orders --from-beginning
  eddy consume orders --partition 2 --offset 1000 --max 10 --format json
  eddy consume orders --group billing --from-beginning`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "value" && format != "json" {
				return fmt.Errorf("--format %q: want value or json", format)
			}
			if group != "" {
				if partition >= 0 || cmd.Flags().Changed("offset") {
					return errors.New("--partition and --offset cannot be used with --group: the group assigns partitions, and starts from its committed offsets (see eddy group reset-offsets)")
				}
				return consumeGroup(cmd, g, args[0], group, groupConsumeOptions{
					fromBeginning: fromBeginning, assignors: assignors, instanceID: instanceID,
					session: session, maxRecords: maxRecords, format: format,
				})
			}
			if cmd.Flags().Changed("assignor") || instanceID != "" || session > 0 {
				return errors.New("--assignor, --instance-id and --session-timeout need --group")
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
	f.StringVarP(&group, "group", "G", "", "join this consumer group and commit what is printed")
	f.StringSliceVar(&assignors, "assignor", []string{string(sdk.CooperativeSticky)},
		"partition assignors offered to the group, preferred first: cooperative-sticky, sticky, range, roundrobin")
	f.StringVar(&instanceID, "instance-id", "", "static group membership: a restart with the same id keeps its partitions")
	f.DurationVar(&session, "session-timeout", 0, "how long the group waits for a silent member before moving its partitions (default 45s)")
	return cmd
}

type groupConsumeOptions struct {
	fromBeginning bool
	assignors     []string
	instanceID    string
	session       time.Duration
	maxRecords    int
	format        string
}

// consumeGroup reads topic as a member of group until interrupted or
// maxRecords were printed; each record is committed after it is printed.
func consumeGroup(cmd *cobra.Command, g *globals, topic, group string, o groupConsumeOptions) error {
	var opts []sdk.GroupOption
	var as []sdk.Assignor
	for _, name := range o.assignors {
		a, err := sdk.ParseAssignor(name)
		if err != nil {
			return fmt.Errorf("--assignor: %w", err)
		}
		as = append(as, a)
	}
	opts = append(opts, sdk.WithAssignors(as...))
	if o.fromBeginning {
		opts = append(opts, sdk.StartFromBeginning())
	}
	if o.instanceID != "" {
		opts = append(opts, sdk.WithInstanceID(o.instanceID))
	}
	if o.session > 0 {
		opts = append(opts, sdk.WithSessionTimeout(o.session))
	}
	errOut := cmd.ErrOrStderr()
	report := func(what string) func(map[string][]int32) {
		return func(parts map[string][]int32) {
			for t, ps := range parts {
				slices.Sort(ps)
				fmt.Fprintf(errOut, "group %s: %s %s%v\n", group, what, t, ps)
			}
		}
	}
	opts = append(opts, sdk.OnAssigned(report("assigned")), sdk.OnRevoked(report("revoked")),
		sdk.OnError(func(err error) { fmt.Fprintf(errOut, "%v (retrying)\n", err) }))

	ctx := cmd.Context()
	c, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	consumer, err := c.NewGroupConsumer(group, []string{topic}, opts...)
	if err != nil {
		return err
	}
	// Close leaves the group after committing what was printed, so the
	// other members take over at once.
	defer consumer.Close()
	out := cmd.OutOrStdout()
	printed := 0
	return consumer.Run(ctx, func(r *kgo.Record) error {
		if err := printRecord(out, r, o.format); err != nil {
			return err
		}
		if printed++; o.maxRecords > 0 && printed >= o.maxRecords {
			return sdk.ErrStop
		}
		return nil
	})
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
