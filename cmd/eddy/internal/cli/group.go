package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset the offsets of, and delete consumer groups",
		Long: `Inspect and manage consumer groups: the named groups Kafka consumers join
(group.id) to share a topic's partitions and to keep their committed offsets.

Groups are created by their first member joining or by a first offset commit,
and are kept while they have members or committed offsets.`,
	}
	cmd.AddCommand(newGroupListCmd(g), newGroupDescribeCmd(g), newGroupResetOffsetsCmd(g), newGroupDeleteCmd(g))
	return cmd
}

// groupAdmin dials the cluster and returns an admin client whose metadata
// requests never create topics: the SDK's client asks for auto-creation
// (for producing), which would turn a mistyped --topic, or a committed
// offset of a deleted topic, into a new topic. done closes both clients.
func (g *globals) groupAdmin(ctx context.Context) (adm *kadm.Client, done func(), err error) {
	c, err := g.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	kc, err := c.NewKgo()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return kadm.NewClient(kc), func() { kc.Close(); c.Close() }, nil
}

// dash prints "-" for an empty string.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupActive reports whether a group in this state has (or is gathering)
// members, so its offsets belong to them.
func groupActive(state string) bool {
	switch state {
	case "Empty", "Dead", "":
		return false
	}
	return true
}

func newGroupListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List consumer groups with their state and number of members",
		Long: `List every consumer group of the cluster, sorted by name, with its state
(Empty, PreparingRebalance, CompletingRebalance, Stable), protocol type
("consumer" for Kafka consumers; "-" for a group that only holds offsets
committed from outside group management) and its number of members.`,
		Example: "  eddy group list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			adm, done, err := g.groupAdmin(ctx)
			if err != nil {
				return err
			}
			defer done()
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			out := cmd.OutOrStdout()
			if len(listed) == 0 {
				fmt.Fprintln(out, "no consumer groups")
				return nil
			}
			described, err := adm.DescribeGroups(ctx, listed.Groups()...)
			if err != nil {
				return fmt.Errorf("list groups: describe: %w", err)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tSTATE\tPROTOCOL TYPE\tMEMBERS")
			for _, l := range listed.Sorted() {
				state, members := l.State, "?"
				if d, ok := described[l.Group]; ok && d.Err == nil {
					state, members = d.State, strconv.Itoa(len(d.Members))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Group, dash(state), dash(l.ProtocolType), members)
			}
			return w.Flush()
		},
	}
}

// errNoGroup is returned for a group that does not exist.
var errNoGroup = errors.New("no such group (no members and no committed offsets)")

func newGroupDescribeCmd(g *globals) *cobra.Command {
	var members bool
	cmd := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's state, committed offsets and lag per partition",
		Long: `Show a consumer group's state, protocol and assignor, then one line per
partition the group owns or has committed offsets for:

  COMMITTED  the group's committed offset: the next record it will read
             ("-" when nothing was committed yet)
  END        the partition's end offset (high watermark)
  LAG        END - COMMITTED; with nothing committed, the records kept in the
             partition (END - start offset)
  MEMBER     the member that owns the partition, with its client id and host
             ("-" when no member owns it, e.g. the group is Empty)

--members lists the members instead of partitions-by-owner: member id, static
instance id (group.instance.id), client id, host and assigned partitions.
Assignments are only known while the group is Stable.`,
		Example: `  eddy group describe billing
  eddy group describe billing --members`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			adm, done, err := g.groupAdmin(ctx)
			if err != nil {
				return err
			}
			defer done()
			lags, err := adm.Lag(ctx, name)
			if err != nil {
				return fmt.Errorf("describe group %s: %w", name, err)
			}
			l, ok := lags[name]
			if !ok {
				return fmt.Errorf("describe group %s: %w", name, errNoGroup)
			}
			if err := l.Error(); err != nil {
				return fmt.Errorf("describe group %s: %w", name, err)
			}
			if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
				return fmt.Errorf("describe group %s: %w", name, errNoGroup)
			}
			out := cmd.OutOrStdout()
			printGroupHeader(out, &l)
			if members {
				return printGroupMembers(out, &l)
			}
			return printGroupLag(out, cmd.ErrOrStderr(), &l)
		},
	}
	cmd.Flags().BoolVar(&members, "members", false, "list the group's members and their assigned partitions")
	return cmd
}

func printGroupHeader(out io.Writer, l *kadm.DescribedGroupLag) {
	w := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	fmt.Fprintf(w, "Group:\t%s\n", l.Group)
	fmt.Fprintf(w, "State:\t%s\n", l.State)
	fmt.Fprintf(w, "Protocol type:\t%s\n", dash(l.ProtocolType))
	assignor := l.Protocol
	if assignor == "" && groupActive(l.State) && l.State != "Stable" {
		assignor = "(chosen when the rebalance completes)"
	}
	fmt.Fprintf(w, "Assignor:\t%s\n", dash(assignor))
	fmt.Fprintf(w, "Members:\t%d\n", len(l.Members))
	fmt.Fprintf(w, "Coordinator:\tnode %d (%s:%d)\n", l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port)
	w.Flush()
	fmt.Fprintln(out)
}

// assignedString lists a member's assigned partitions as topic:p,p topic:p.
func assignedString(m *kadm.DescribedGroupMember) string {
	a, ok := m.Assigned.AsConsumer()
	if !ok || a == nil || len(a.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range a.Topics {
		ps := append([]int32(nil), t.Partitions...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		strs := make([]string, len(ps))
		for i, p := range ps {
			strs[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t.Topic+":"+strings.Join(strs, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func printGroupMembers(out io.Writer, l *kadm.DescribedGroupLag) error {
	if len(l.Members) == 0 {
		fmt.Fprintf(out, "group %s has no active members\n", l.Group)
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tPARTITIONS")
	for i := range l.Members {
		m := &l.Members[i]
		instance := "-"
		if m.InstanceID != nil {
			instance = *m.InstanceID
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, instance, dash(m.ClientID), dash(m.ClientHost), assignedString(m))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if l.State != "Stable" {
		fmt.Fprintf(out, "\nthe group is %s: assignments are shown once it is Stable\n", l.State)
	}
	return nil
}

func printGroupLag(out, errOut io.Writer, l *kadm.DescribedGroupLag) error {
	rows := l.Lag.Sorted()
	if len(rows) == 0 {
		fmt.Fprintf(out, "group %s owns no partitions and has no committed offsets\n", l.Group)
		if groupActive(l.State) && l.State != "Stable" {
			fmt.Fprintf(out, "(it is %s: partitions are assigned when the rebalance completes)\n", l.State)
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER\tCLIENT-ID\tHOST")
	var (
		total    int64
		problems []string
	)
	for _, r := range rows {
		committed, end, lag := "-", "-", "-"
		if r.Commit.At >= 0 {
			committed = strconv.FormatInt(r.Commit.At, 10)
		}
		if r.End.Err == nil {
			end = strconv.FormatInt(r.End.Offset, 10)
		}
		if r.Err == nil && r.Lag >= 0 {
			lag = strconv.FormatInt(r.Lag, 10)
			total += r.Lag
		} else if r.Err != nil {
			problems = append(problems, fmt.Sprintf("%s/%d: %v", r.Topic, r.Partition, r.Err))
		}
		member, client, host := "-", "-", "-"
		if r.Member != nil {
			member, client, host = r.Member.MemberID, dash(r.Member.ClientID), dash(r.Member.ClientHost)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Topic, r.Partition, committed, end, lag, member, client, host)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTotal lag: %d", total)
	if len(problems) > 0 {
		fmt.Fprintf(out, " (not counting %s whose lag is unknown)", plural(len(problems), "partition"))
	}
	fmt.Fprintln(out)
	for _, p := range problems {
		fmt.Fprintln(errOut, "warning:", p)
	}
	return nil
}

// resetTarget is the chosen --to-* option of reset-offsets.
type resetTarget struct {
	kind   string // earliest, latest, offset, datetime, shift
	offset int64  // --to-offset or --shift-by
	at     time.Time
}

// localLayout is the --to-datetime layout read as local time.
const localLayout = "2006-01-02T15:04:05"

// parseDatetime reads RFC 3339 (with a zone), or a local time without one.
// Fractional seconds are accepted in both.
func parseDatetime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(localLayout, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("--to-datetime %q: want RFC 3339, e.g. 2026-11-21T10:00:00Z or 2026-11-21T10:00:00+01:00, or local time as 2026-11-21T10:00:00", s)
	}
	return t, nil
}

// resetRow is one partition's planned reset.
type resetRow struct {
	topic     string
	partition int32
	old, new  int64 // old is -1 without a committed offset
}

func newGroupResetOffsetsCmd(g *globals) *cobra.Command {
	var (
		topics        []string
		allTopics     bool
		partitionList string
		earliest      bool
		latest        bool
		toOffset      int64
		datetime      string
		shiftBy       int64
		dryRun        bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic TOPIC ... | --all-topics) --to-earliest|--to-latest|--to-offset N|--to-datetime TIME|--shift-by N",
		Short: "Move a group's committed offsets (the group's consumers must be stopped)",
		Long: `Set a consumer group's committed offsets, so that its consumers start from
there when they next join. Choose exactly one target:

  --to-earliest        the oldest record kept in each partition
  --to-latest          the end of each partition (skip everything there now)
  --to-offset N        offset N in every chosen partition
  --to-datetime TIME   the first record with a timestamp at or after TIME
                       (the end of the partition when there is none). TIME is
                       RFC 3339 (2026-11-21T10:00:00Z, 2026-11-21T10:00:00+01:00)
                       or local time without a zone (2026-11-21T10:00:00)
  --shift-by N         the committed offset plus N (negative to go back);
                       every chosen partition needs a committed offset

Offsets outside a partition's [start, end] are moved to the nearest bound,
as Kafka does, with a note for each. The partitions reset are all those of
every --topic, or with --all-topics those the group has committed offsets for;
--partitions narrows either to the partitions listed.

The group's consumers must be stopped first: offsets of a group with active
members belong to them and are refused. Resetting a group that does not exist
yet creates it with these offsets. --dry-run prints the plan (old and new
offset of each partition) without committing anything.`,
		Example: `  eddy group reset-offsets billing --topic orders --to-earliest --dry-run
  eddy group reset-offsets billing --topic orders --to-datetime 2026-11-21T10:00:00Z
  eddy group reset-offsets billing --topic orders --partitions 0,2 --shift-by -100
  eddy group reset-offsets billing --all-topics --to-latest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			f := cmd.Flags()
			var chosen []string
			var target resetTarget
			if f.Changed("to-earliest") && earliest {
				chosen, target.kind = append(chosen, "--to-earliest"), "earliest"
			}
			if f.Changed("to-latest") && latest {
				chosen, target.kind = append(chosen, "--to-latest"), "latest"
			}
			if f.Changed("to-offset") {
				chosen, target.kind, target.offset = append(chosen, "--to-offset"), "offset", toOffset
			}
			if f.Changed("to-datetime") {
				chosen, target.kind = append(chosen, "--to-datetime"), "datetime"
			}
			if f.Changed("shift-by") {
				chosen, target.kind, target.offset = append(chosen, "--shift-by"), "shift", shiftBy
			}
			switch len(chosen) {
			case 0:
				return errors.New("say where to move the offsets: give one of --to-earliest, --to-latest, --to-offset N, --to-datetime TIME or --shift-by N")
			case 1:
			default:
				return fmt.Errorf("%s cannot be combined: give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by", strings.Join(chosen, " and "))
			}
			if target.kind == "datetime" {
				t, err := parseDatetime(datetime)
				if err != nil {
					return err
				}
				target.at = t
			}
			switch {
			case len(topics) == 0 && !allTopics:
				return errors.New("say which topics: give --topic TOPIC (repeatable) or --all-topics")
			case len(topics) > 0 && allTopics:
				return errors.New("give either --topic or --all-topics, not both")
			}
			partitions, err := parsePartitions(partitionList)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, done, err := g.groupAdmin(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := checkGroupInactive(ctx, adm, name); err != nil {
				return err
			}
			committed, err := adm.FetchOffsets(ctx, name)
			if err != nil {
				return fmt.Errorf("reset offsets of group %s: fetch committed offsets: %w", name, err)
			}
			// The partitions of each topic to reset; nil is all of them.
			sel := map[string][]int32{}
			for _, t := range topics {
				sel[t] = partitions
			}
			if allTopics {
				// As Kafka: the partitions the group has committed offsets for.
				for _, o := range committed.Sorted() {
					if o.Err == nil && o.At >= 0 && (len(partitions) == 0 || slices.Contains(partitions, o.Partition)) {
						sel[o.Topic] = append(sel[o.Topic], o.Partition)
					}
				}
				if len(sel) == 0 {
					where := ""
					if len(partitions) > 0 {
						where = " on those partitions"
					}
					return fmt.Errorf("reset offsets of group %s: it has no committed offsets%s; name the topics with --topic", name, where)
				}
			}
			rows, notes, err := planReset(ctx, adm, sel, committed, target)
			if err != nil {
				return fmt.Errorf("reset offsets of group %s: %w", name, err)
			}
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
			}
			out := cmd.OutOrStdout()
			if dryRun {
				if err := printResetRows(out, rows); err != nil {
					return err
				}
				fmt.Fprintf(out, "\ndry run: nothing committed; run again without --dry-run to move %s of group %s\n", plural(len(rows), "partition"), name)
				return nil
			}
			if err := commitReset(ctx, adm, name, rows); err != nil {
				return err
			}
			if err := printResetRows(out, rows); err != nil {
				return err
			}
			fmt.Fprintf(out, "\ncommitted new offsets for %s of group %s\n", plural(len(rows), "partition"), name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&topics, "topic", "t", nil, "topic whose offsets to reset (repeatable)")
	fl.BoolVar(&allTopics, "all-topics", false, "reset every topic the group has committed offsets for")
	fl.StringVarP(&partitionList, "partitions", "p", "", "only these partitions of each topic, e.g. 0,2 (default: all)")
	fl.BoolVar(&earliest, "to-earliest", false, "move to the oldest record kept")
	fl.BoolVar(&latest, "to-latest", false, "move to the end of each partition")
	fl.Int64Var(&toOffset, "to-offset", 0, "move to this offset (kept within each partition's start and end)")
	fl.StringVar(&datetime, "to-datetime", "", "move to the first record at or after this time (RFC 3339, or local 2006-01-02T15:04:05)")
	fl.Int64Var(&shiftBy, "shift-by", 0, "move the committed offset by N records (negative: back)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan without committing")
	return cmd
}

// checkGroupInactive refuses groups with members: their offsets are theirs.
func checkGroupInactive(ctx context.Context, adm *kadm.Client, name string) error {
	described, err := adm.DescribeGroups(ctx, name)
	if err != nil {
		return fmt.Errorf("reset offsets of group %s: describe: %w", name, err)
	}
	d, ok := described[name]
	if !ok {
		return nil
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("reset offsets of group %s: describe: %w%s", name, d.Err, detail(d.ErrMessage))
	}
	if groupActive(d.State) {
		static := ""
		for _, m := range d.Members {
			if m.InstanceID != nil {
				static = "; static members (group.instance.id) stay until their session times out"
				break
			}
		}
		return fmt.Errorf("group %s is %s with %s: stop the group's consumers first (offsets can only be reset while the group is Empty%s)", name, d.State, plural(len(d.Members), "active member"), static)
	}
	return nil
}

// plural says "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// parsePartitions reads --partitions: comma-separated partition numbers.
func parsePartitions(s string) ([]int32, error) {
	if s == "" {
		return nil, nil
	}
	var ps []int32
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("--partitions %q: want partition numbers separated by commas, e.g. 0,2", s)
		}
		ps = append(ps, int32(p))
	}
	return ps, nil
}

func uniqueSorted(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// listedFor checks a listing of topics: every topic must exist and answer.
func listedFor(what string, l kadm.ListedOffsets, err error, topics []string) (kadm.ListedOffsets, error) {
	if err != nil {
		return nil, fmt.Errorf("list %s offsets: %w", what, err)
	}
	for _, t := range topics {
		ps, ok := l[t]
		if !ok || len(ps) == 0 {
			return nil, fmt.Errorf("topic %s: %w", t, kerr.UnknownTopicOrPartition)
		}
		if p, ok := ps[-1]; ok && p.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", t, p.Err)
		}
	}
	return l, nil
}

// planReset works out each chosen partition's new offset. Notes say where
// an offset was moved into the partition's range.
func planReset(ctx context.Context, adm *kadm.Client, sel map[string][]int32, committed kadm.OffsetResponses, target resetTarget) ([]resetRow, []string, error) {
	topics := slices.Sorted(maps.Keys(sel))
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if starts, err = listedFor("start", starts, err, topics); err != nil {
		return nil, nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if ends, err = listedFor("end", ends, err, topics); err != nil {
		return nil, nil, err
	}
	var byTime kadm.ListedOffsets
	if target.kind == "datetime" {
		byTime, err = adm.ListOffsetsAfterMilli(ctx, target.at.UnixMilli(), topics...)
		if byTime, err = listedFor("by-time", byTime, err, topics); err != nil {
			return nil, nil, err
		}
	}
	var (
		rows     []resetRow
		notes    []string
		noCommit []string
	)
	for _, t := range topics {
		ps := sel[t]
		if len(ps) == 0 {
			for p := range ends[t] {
				ps = append(ps, p)
			}
		}
		ps = append([]int32(nil), ps...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for i, p := range ps {
			if i > 0 && p == ps[i-1] {
				continue
			}
			end, ok := ends.Lookup(t, p)
			if !ok {
				return nil, nil, fmt.Errorf("topic %s has no partition %d (it has %d)", t, p, len(ends[t]))
			}
			start, _ := starts.Lookup(t, p)
			for _, l := range []kadm.ListedOffset{start, end} {
				if l.Err != nil {
					return nil, nil, fmt.Errorf("%s/%d: %w", t, p, l.Err)
				}
			}
			row := resetRow{topic: t, partition: p, old: -1}
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				row.old = c.At
			}
			want := int64(0)
			switch target.kind {
			case "earliest":
				want = start.Offset
			case "latest":
				want = end.Offset
			case "offset":
				want = target.offset
			case "datetime":
				bt, ok := byTime.Lookup(t, p)
				switch {
				case !ok:
					return nil, nil, fmt.Errorf("%s/%d: missing from the by-time listing", t, p)
				case bt.Err != nil:
					return nil, nil, fmt.Errorf("%s/%d: find offset by time: %w", t, p, bt.Err)
				}
				want = bt.Offset
				if want < 0 {
					want = end.Offset
				}
			case "shift":
				if row.old < 0 {
					noCommit = append(noCommit, fmt.Sprintf("%s/%d", t, p))
					continue
				}
				want = row.old + target.offset
			}
			row.new = want
			switch {
			case want < start.Offset:
				row.new = start.Offset
				notes = append(notes, fmt.Sprintf("%s/%d: offset %d is before the partition's start %d; using %d", t, p, want, start.Offset, start.Offset))
			case want > end.Offset:
				row.new = end.Offset
				notes = append(notes, fmt.Sprintf("%s/%d: offset %d is past the partition's end %d; using %d", t, p, want, end.Offset, end.Offset))
			}
			rows = append(rows, row)
		}
	}
	if len(noCommit) > 0 {
		return nil, nil, fmt.Errorf("cannot --shift-by without a committed offset to shift from: %s (use --to-offset, --to-earliest or --to-latest for them)", strings.Join(noCommit, ", "))
	}
	return rows, notes, nil
}

func printResetRows(out io.Writer, rows []resetRow) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPARTITION\tOLD\tNEW")
	for _, r := range rows {
		old := "-"
		if r.old >= 0 {
			old = strconv.FormatInt(r.old, 10)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", r.topic, r.partition, old, r.new)
	}
	return w.Flush()
}

// commitReset commits the planned offsets and checks every partition.
func commitReset(ctx context.Context, adm *kadm.Client, name string, rows []resetRow) error {
	offs := make(kadm.Offsets)
	for _, r := range rows {
		offs.Add(kadm.Offset{Topic: r.topic, Partition: r.partition, At: r.new, LeaderEpoch: -1})
	}
	resps, err := adm.CommitOffsets(ctx, name, offs)
	if err != nil {
		return fmt.Errorf("reset offsets of group %s: commit: %w", name, err)
	}
	var (
		failed []error
		joined bool
	)
	for _, r := range resps.Sorted() {
		if r.Err == nil {
			continue
		}
		failed = append(failed, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, r.Err))
		if errors.Is(r.Err, kerr.UnknownMemberID) || errors.Is(r.Err, kerr.IllegalGeneration) || errors.Is(r.Err, kerr.RebalanceInProgress) {
			joined = true
		}
	}
	if len(failed) == 0 {
		return nil
	}
	hint := ""
	if joined {
		hint = " (a consumer joined the group meanwhile: stop the group's consumers first)"
	}
	return fmt.Errorf("reset offsets of group %s: %d of %d partitions not committed%s: %w", name, len(failed), len(rows), hint, errors.Join(failed...))
}

func newGroupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP [GROUP...]",
		Short: "Delete consumer groups and their committed offsets",
		Long: `Delete consumer groups with all their committed offsets. A group can only be
deleted while it has no members: stop its consumers first. Each group is
deleted on its own; the command fails if any of them could not be deleted.`,
		Example: `  eddy group delete billing
  eddy group delete old-reports old-billing`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			adm, done, err := g.groupAdmin(ctx)
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteGroups(ctx, uniqueSorted(args)...)
			if err != nil && len(resps) == 0 {
				return fmt.Errorf("delete groups: %w", err)
			}
			out := cmd.OutOrStdout()
			var errs []error
			for _, name := range uniqueSorted(args) {
				r, ok := resps[name]
				switch {
				case !ok:
					if err == nil {
						err = errors.New("missing from the broker's answer")
					}
					errs = append(errs, fmt.Errorf("delete group %s: %w", name, err))
				case r.Err == nil:
					fmt.Fprintf(out, "deleted group %s\n", name)
				default:
					errs = append(errs, fmt.Errorf("delete group %s: %w%s%s", name, r.Err, detail(r.ErrMessage), deleteHint(r.Err)))
				}
			}
			return errors.Join(errs...)
		},
	}
}

func deleteHint(err error) string {
	switch {
	case errors.Is(err, kerr.NonEmptyGroup):
		return " (the group has active members: stop its consumers first)"
	case errors.Is(err, kerr.GroupIDNotFound):
		return " (no such group)"
	}
	return ""
}
