package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTopicCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cmd.AddCommand(newTopicCreateCmd(g), newTopicListCmd(g), newTopicDescribeCmd(g), newTopicAlterCmd(g), newTopicDeleteCmd(g), newTopicReassignCmd(g))
	return cmd
}

// parseConfigs turns k=v flags into a kadm config map.
func parseConfigs(kvs []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--config %q: want key=value, e.g. retention.ms=86400000", kv)
		}
		out[k] = &v
	}
	return out, nil
}

func newTopicCreateCmd(g *globals) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic. Each partition is its own Raft group, replicated on --replicas nodes.

Topic configs use Kafka's names: retention.ms, retention.bytes, segment.bytes,
segment.ms, max.message.bytes, message.timestamp.type (CreateTime or
LogAppendTime), cleanup.policy (delete).`,
		Example: `  eddy topic create orders --partitions 6
  eddy topic create logs --config retention.ms=86400000 --config segment.bytes=67108864`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgs, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Admin().CreateTopic(cmd.Context(), partitions, replicas, cfgs, args[0])
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				return fmt.Errorf("create topic %s: %w%s", args[0], err, detail(resp.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %d partitions, replication factor %d\n", resp.Topic, resp.NumPartitions, resp.ReplicationFactor)
			return nil
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (default: the broker's, 3 unless configured)")
	cmd.Flags().Int16VarP(&replicas, "replicas", "r", -1, "replication factor (default: the broker's, 1 unless configured)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config key=value (repeatable)")
	return cmd
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

func newTopicListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			topics, err := c.Admin().ListTopics(cmd.Context())
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tPARTITIONS\tREPLICAS")
			for _, t := range topics.Sorted() {
				rf := 0
				for _, p := range t.Partitions {
					rf = len(p.Replicas)
					break
				}
				fmt.Fprintf(w, "%s\t%d\t%d\n", t.Topic, len(t.Partitions), rf)
			}
			return w.Flush()
		},
	}
}

func newTopicDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			adm := c.Admin()
			topics, err := adm.ListTopics(ctx, name)
			if err != nil {
				return fmt.Errorf("describe %s: %w", name, err)
			}
			t, ok := topics[name]
			if !ok || t.Err != nil {
				if t.Err == nil {
					t.Err = errors.New("not found")
				}
				return fmt.Errorf("describe %s: %w", name, t.Err)
			}
			starts, err := adm.ListStartOffsets(ctx, name)
			if err != nil {
				return fmt.Errorf("describe %s: start offsets: %w", name, err)
			}
			ends, err := adm.ListEndOffsets(ctx, name)
			if err != nil {
				return fmt.Errorf("describe %s: end offsets: %w", name, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Topic: %s  ID: %s  Partitions: %d\n\n", name, t.ID, len(t.Partitions))
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tSTART\tEND\tRECORDS")
			for _, p := range t.Partitions.Sorted() {
				s, _ := starts.Lookup(name, p.Partition)
				e, _ := ends.Lookup(name, p.Partition)
				fmt.Fprintf(w, "%d\t%d\t%d\t%v\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.LeaderEpoch,
					p.Replicas, p.ISR, s.Offset, e.Offset, e.Offset-s.Offset)
			}
			w.Flush()
			cfgs, err := adm.DescribeTopicConfigs(ctx, name)
			if err != nil {
				return fmt.Errorf("describe %s: configs: %w", name, err)
			}
			rc, err := cfgs.On(name, nil)
			if err != nil {
				return fmt.Errorf("describe %s: configs: %w", name, err)
			}
			fmt.Fprintln(out, "\nCONFIG")
			w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			sort.Slice(rc.Configs, func(i, j int) bool { return rc.Configs[i].Key < rc.Configs[j].Key })
			for _, cfg := range rc.Configs {
				v := ""
				if cfg.Value != nil {
					v = *cfg.Value
				}
				fmt.Fprintf(w, "%s\t%s\t(%s)\n", cfg.Key, v, sourceName(cfg.Source))
			}
			return w.Flush()
		},
	}
}

func sourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "set on topic"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "node default"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

func newTopicAlterCmd(g *globals) *cobra.Command {
	var set, del []string
	cmd := &cobra.Command{
		Use:     "alter NAME",
		Short:   "Change a topic's configs",
		Example: "  eddy topic alter orders --config retention.ms=3600000 --delete-config segment.ms",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgs, err := parseConfigs(set)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			for k, v := range cfgs {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
			}
			for _, k := range del {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(alters) == 0 {
				return errors.New("nothing to change: give --config key=value or --delete-config key")
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			resps, err := c.Admin().AlterTopicConfigs(cmd.Context(), alters, args[0])
			if err != nil {
				return fmt.Errorf("alter %s: %w", args[0], err)
			}
			for _, r := range resps {
				if r.Err != nil {
					return fmt.Errorf("alter %s: %w%s", r.Name, r.Err, detail(r.ErrMessage))
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "altered topic %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&set, "config", nil, "config to set, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete-config", nil, "config to reset to its default (repeatable)")
	return cmd
}

func newTopicDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic and all its records",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Admin().DeleteTopic(cmd.Context(), args[0])
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				return fmt.Errorf("delete topic %s: %w%s", args[0], err, detail(resp.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", args[0])
			return nil
		},
	}
}

func newTopicReassignCmd(g *globals) *cobra.Command {
	var (
		partitions []int32
		replicas   []uint
		wait       bool
	)
	cmd := &cobra.Command{
		Use:   "reassign TOPIC --partition P --replicas ID,ID,...",
		Short: "Move partitions of a topic to other nodes",
		Long: `Move partitions to a new set of replicas (node ids; the first is the preferred
leader). New replicas catch up as Raft learners before they vote; old ones are
removed afterwards, so the partition stays available and loses nothing.`,
		Example: "  eddy topic reassign orders --partition 0 --partition 3 --replicas 2,3,4 --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(partitions) == 0 || len(replicas) == 0 {
				return fmt.Errorf("give --partition (one or more) and --replicas")
			}
			ids := make([]uint64, len(replicas))
			for i, r := range replicas {
				ids[i] = uint64(r)
			}
			req := map[int32][]uint64{}
			for _, p := range partitions {
				req[p] = ids
			}
			if err := g.adminClient().Reassign(cmd.Context(), args[0], req); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moving %d partitions of %s to %v\n", len(partitions), args[0], ids)
			if wait {
				return waitMoves(cmd, g)
			}
			return nil
		},
	}
	cmd.Flags().Int32SliceVarP(&partitions, "partition", "p", nil, "partition to move (repeatable)")
	cmd.Flags().UintSliceVar(&replicas, "replicas", nil, "new replicas, node ids, preferred leader first")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the move has finished")
	return cmd
}
