package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/appliance/nodetest"
	"github.com/eddybroker/eddy/sdk"
)

// committed returns a group's committed offsets of topic, by partition.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, r := range resps[topic] {
		if r.Err != nil {
			t.Fatalf("fetch offsets of %s: %s/%d: %v", group, topic, p, r.Err)
		}
		if r.At >= 0 {
			out[p] = r.At
		}
	}
	return out
}

func wantCommitted(t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	if got := committed(t, adm, group, topic); !maps.Equal(got, want) {
		t.Fatalf("group %s committed %v on %s, want %v", group, got, topic, want)
	}
}

// rows returns the fields of the table lines that start with first, keyed
// by their second field (the partition).
func rows(out, first string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == first {
			m[f[1]] = f
		}
	}
	return m
}

// wantRow checks a table row's leading fields after topic and partition.
func wantRow(t *testing.T, out string, partition string, want ...string) {
	t.Helper()
	r, ok := rows(out, "orders")[partition]
	if !ok {
		t.Fatalf("no row for orders/%s:\n%s", partition, out)
	}
	if len(r) < 2+len(want) {
		t.Fatalf("row for orders/%s is %v, want %v...:\n%s", partition, r, want, out)
	}
	for i, w := range want {
		if r[2+i] != w {
			t.Fatalf("row for orders/%s is %v, want %v...:\n%s", partition, r[2:], want, out)
		}
	}
}

func TestGroupCommands(t *testing.T) {
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := n.Client(t, sdk.QUIC).Admin()

	if out := mustRun(t, n, "", "group", "list"); !strings.Contains(out, "no consumer groups") {
		t.Fatalf("list with no groups: %q", out)
	}
	mustRun(t, n, "", "topic", "create", "orders", "--partitions", "3")
	// Partition p holds counts[p] records, record i stamped base + i seconds.
	counts := []int{10, 20, 5}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	prod := n.Client(t, sdk.QUIC, sdk.WithKgoOptions(kgo.RecordPartitioner(kgo.ManualPartitioner())))
	// produce writes records [from[p], to[p]) of each partition p.
	produce := func(from, to []int) {
		t.Helper()
		var recs []*kgo.Record
		for p := range counts {
			for i := from[p]; i < to[p]; i++ {
				recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(p), Value: fmt.Appendf(nil, "p%d-%d", p, i),
					Timestamp: base.Add(time.Duration(i) * time.Second)})
			}
		}
		if err := prod.Produce(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}

	// A real group member reads what is there (4 records of partition 0,
	// 12 of partition 1, none of 2) and commits it; then the rest arrives.
	firstPart := []int{4, 12, 0}
	produce([]int{0, 0, 0}, firstPart)
	member := n.KgoClient(t, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID("billing-worker"), kgo.DisableAutoCommit())
	for got := 0; got < 16; {
		fs := member.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		got += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	produce(firstPart, counts)
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 4, 1: 12})
	memberID, _ := member.GroupMetadata()

	out := mustRun(t, n, "", "group", "list")
	if f := rows(out, "billing")["Stable"]; len(f) != 4 || f[2] != "consumer" || f[3] != "1" {
		t.Fatalf("list with an active member:\n%s", out)
	}
	out = mustRun(t, n, "", "group", "describe", "billing")
	for _, want := range []string{"State:         Stable", "Assignor:", "Members:       1", "Total lag: 19"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	wantRow(t, out, "0", "4", "10", "6", memberID, "billing-worker")
	wantRow(t, out, "1", "12", "20", "8", memberID, "billing-worker")
	wantRow(t, out, "2", "-", "5", "5", memberID, "billing-worker")
	out = mustRun(t, n, "", "group", "describe", "billing", "--members")
	if !strings.Contains(out, memberID) || !strings.Contains(out, "billing-worker") || !strings.Contains(out, "orders:0,1,2") {
		t.Fatalf("describe --members:\n%s", out)
	}

	// Offsets of a group with members are theirs.
	if _, errOut, code := run(t, n, "", "group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest"); code == 0 ||
		!strings.Contains(errOut, "Stable with 1 active member:") || !strings.Contains(errOut, "stop the group's consumers first") {
		t.Fatalf("reset with an active member: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, n, "", "group", "delete", "billing"); code == 0 ||
		!strings.Contains(errOut, "NON_EMPTY_GROUP") || !strings.Contains(errOut, "stop its consumers first") {
		t.Fatalf("delete with an active member: exit %d, %q", code, errOut)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 4, 1: 12})

	member.Close() // leaves the group
	out = mustRun(t, n, "", "group", "describe", "billing")
	if !strings.Contains(out, "State:         Empty") || !strings.Contains(out, "Members:       0") {
		t.Fatalf("describe after the member left:\n%s", out)
	}
	wantRow(t, out, "0", "4", "10", "6", "-", "-", "-")
	wantRow(t, out, "1", "12", "20", "8", "-", "-", "-")
	wantRow(t, out, "2", "-", "5", "5", "-", "-", "-")
	if out := mustRun(t, n, "", "group", "describe", "billing", "--members"); !strings.Contains(out, "no active members") {
		t.Fatalf("describe --members of an empty group:\n%s", out)
	}
	if f := rows(mustRun(t, n, "", "group", "list"), "billing")["Empty"]; len(f) != 4 || f[3] != "0" {
		t.Fatalf("list after the member left: %v", f)
	}

	reset := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, code := run(t, n, "", append([]string{"group", "reset-offsets", "billing", "--topic", "orders"}, args...)...)
		if code != 0 {
			t.Fatalf("reset-offsets %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out, errOut
	}
	out, _ = reset("--to-earliest", "--dry-run")
	wantRow(t, out, "0", "4", "0")
	wantRow(t, out, "1", "12", "0")
	wantRow(t, out, "2", "-", "0")
	if !strings.Contains(out, "dry run: nothing committed") {
		t.Fatalf("dry run:\n%s", out)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 4, 1: 12})

	out, _ = reset("--to-earliest")
	wantRow(t, out, "2", "-", "0")
	if !strings.Contains(out, "committed new offsets for 3 partitions of group billing") {
		t.Fatalf("reset summary:\n%s", out)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 0, 1: 0, 2: 0})

	_, errOut := reset("--to-offset", "7")
	if !strings.Contains(errOut, "orders/2: offset 7 is past the partition's end 5; using 5") {
		t.Fatalf("--to-offset past the end says nothing: %q", errOut)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 7, 1: 7, 2: 5})

	out, _ = reset("--to-latest", "--partitions", "0,2")
	if _, ok := rows(out, "orders")["1"]; ok {
		t.Fatalf("--partitions 0,2 reset partition 1:\n%s", out)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 10, 1: 7, 2: 5})

	out, _ = reset("--shift-by", "-3")
	wantRow(t, out, "1", "7", "4")
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 7, 1: 4, 2: 2})

	_, errOut = reset("--shift-by", "100")
	if !strings.Contains(errOut, "orders/1: offset 104 is past the partition's end 20; using 20") {
		t.Fatalf("--shift-by past the end says nothing: %q", errOut)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 10, 1: 20, 2: 5})

	_, errOut = reset("--to-offset", "-5", "--partitions", "1")
	if !strings.Contains(errOut, "offset -5 is before the partition's start 0; using 0") {
		t.Fatalf("--to-offset before the start says nothing: %q", errOut)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 10, 1: 0, 2: 5})

	// By time: the first record at or after it, or the end when none is.
	reset("--to-datetime", base.Add(3*time.Second).UTC().Format(time.RFC3339))
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 3, 1: 3, 2: 3})
	reset("--to-datetime", base.Add(2500*time.Millisecond).Format("2006-01-02T15:04:05.000-07:00"))
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 3, 1: 3, 2: 3})
	reset("--to-datetime", base.Add(6*time.Second).Local().Format("2006-01-02T15:04:05"))
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 6, 1: 6, 2: 5})

	// Resetting a group nobody has joined creates it.
	out = mustRun(t, n, "", "group", "reset-offsets", "fresh", "--topic", "orders", "--partitions", "1", "--to-offset", "2")
	wantRow(t, out, "1", "-", "2")
	wantCommitted(t, adm, "fresh", "orders", map[int32]int64{1: 2})
	if f := rows(mustRun(t, n, "", "group", "list"), "fresh")["Empty"]; len(f) != 4 || f[3] != "0" {
		t.Fatalf("list of a group made by reset-offsets: %v", f)
	}
	out = mustRun(t, n, "", "group", "describe", "fresh")
	wantRow(t, out, "1", "2", "20", "18", "-")
	if _, errOut, code := run(t, n, "", "group", "reset-offsets", "fresh", "--topic", "orders", "--shift-by", "1"); code == 0 ||
		!strings.Contains(errOut, "cannot --shift-by without a committed offset to shift from: orders/0, orders/2") {
		t.Fatalf("--shift-by without commits: exit %d, %q", code, errOut)
	}
	out = mustRun(t, n, "", "group", "reset-offsets", "fresh", "--all-topics", "--to-latest")
	wantRow(t, out, "1", "2", "20")
	wantCommitted(t, adm, "fresh", "orders", map[int32]int64{1: 20})

	// Bad flags and unknown names.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset-offsets", "billing", "--topic", "orders"}, "give one of --to-earliest, --to-latest"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--to-latest"}, "--to-earliest and --to-latest cannot be combined"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--to-offset", "1", "--shift-by", "1"}, "--to-offset and --shift-by cannot be combined"},
		{[]string{"reset-offsets", "billing", "--to-earliest"}, "give --topic TOPIC"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--all-topics", "--to-earliest"}, "either --topic or --all-topics"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--to-datetime", "yesterday"}, "want RFC 3339"},
		{[]string{"reset-offsets", "billing", "--topic", "nope", "--to-earliest"}, "UNKNOWN_TOPIC_OR_PARTITION"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--partitions", "9", "--to-earliest"}, "topic orders has no partition 9"},
		{[]string{"reset-offsets", "billing", "--topic", "orders", "--partitions", "0,x", "--to-earliest"}, "want partition numbers separated by commas"},
		{[]string{"reset-offsets", "ghost", "--all-topics", "--to-earliest"}, "no committed offsets"},
		{[]string{"describe", "ghost"}, "describe group ghost: no such group"},
		{[]string{"delete", "ghost"}, "GROUP_ID_NOT_FOUND"},
	} {
		if _, errOut, code := run(t, n, "", append([]string{"group"}, c.args...)...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Fatalf("group %v: exit %d, %q; want an error with %q", c.args, code, errOut, c.want)
		}
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{0: 6, 1: 6, 2: 5})
	if out := mustRun(t, n, "", "topic", "list"); strings.Contains(out, "nope") {
		t.Fatalf("reset-offsets --topic nope created the topic:\n%s", out)
	}

	// Delete: one at a time succeeds or fails on its own.
	out, errOut, code := run(t, n, "", "group", "delete", "ghost", "fresh")
	if code == 0 || !strings.Contains(out, "deleted group fresh") || !strings.Contains(errOut, "delete group ghost: GROUP_ID_NOT_FOUND") {
		t.Fatalf("delete ghost fresh: exit %d, %q, %q", code, out, errOut)
	}
	if out := mustRun(t, n, "", "group", "delete", "billing"); !strings.Contains(out, "deleted group billing") {
		t.Fatalf("delete: %q", out)
	}
	if out := mustRun(t, n, "", "group", "list"); !strings.Contains(out, "no consumer groups") {
		t.Fatalf("list after deleting every group:\n%s", out)
	}
	if _, errOut, code := run(t, n, "", "group", "describe", "billing"); code == 0 || !strings.Contains(errOut, "no such group") {
		t.Fatalf("describe a deleted group: exit %d, %q", code, errOut)
	}
	wantCommitted(t, adm, "billing", "orders", map[int32]int64{})
}

func TestGroupHelp(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"group"}, []string{"list", "describe", "reset-offsets", "delete"}},
		{[]string{"group", "describe"}, []string{"COMMITTED", "LAG", "--members"}},
		{[]string{"group", "reset-offsets"}, []string{"--to-earliest", "--to-latest", "--to-offset", "--to-datetime", "--shift-by", "--dry-run", "--partitions", "stopped"}},
		{[]string{"group", "delete"}, []string{"stop its consumers first"}},
	} {
		var out, errOut strings.Builder
		if code := Run(context.Background(), append(c.cmd, "--help"), nil, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d %s", c.cmd, code, errOut.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("%v lacks %q:\n%s", c.cmd, w, out.String())
			}
		}
	}
}
