package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/sdk"
)

func dialTest(t *testing.T) *sdk.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func createTopic(t *testing.T, c *sdk.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := c.Admin().CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func produceN(t *testing.T, c *sdk.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("r%d", i))})
	}
	if err := c.Produce(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

// member runs a group consumer in the background, recording what it
// processed.
type member struct {
	g      *sdk.GroupConsumer
	cancel context.CancelFunc
	done   chan error
}

type processed struct {
	mu     sync.Mutex
	values map[string]int
	parts  map[string]map[int32]bool // member name → partitions it read
}

func (p *processed) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.values)
}

func startMember(t *testing.T, c *sdk.Client, name, group, topic string, seen *processed, opts ...sdk.GroupOption) *member {
	t.Helper()
	g, err := c.NewGroupConsumer(group, []string{topic}, append([]sdk.GroupOption{sdk.StartFromBeginning()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() {
		m.done <- g.Run(ctx, func(r *kgo.Record) error {
			seen.mu.Lock()
			defer seen.mu.Unlock()
			seen.values[string(r.Value)]++
			if seen.parts[name] == nil {
				seen.parts[name] = map[int32]bool{}
			}
			seen.parts[name][r.Partition] = true
			return nil
		})
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.g.Close()
	m.cancel = nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assignedCount(g *sdk.GroupConsumer) int {
	n := 0
	for _, ps := range g.Assigned() {
		n += len(ps)
	}
	return n
}

// Two members share a topic's partitions, commit what they processed,
// and a later member of the same group starts where they stopped.
func TestGroupConsumersShareAndCommit(t *testing.T) {
	c := dialTest(t)
	createTopic(t, c, "shared", 6)
	seen := &processed{values: map[string]int{}, parts: map[string]map[int32]bool{}}
	a := startMember(t, c, "a", "sharers", "shared", seen)
	b := startMember(t, c, "b", "sharers", "shared", seen)
	waitUntil(t, "both members to own partitions", func() bool {
		na, nb := assignedCount(a.g), assignedCount(b.g)
		return na > 0 && nb > 0 && na+nb == 6
	})
	produceN(t, c, "shared", 0, 600)
	waitUntil(t, "600 records processed", func() bool { return seen.count() == 600 })
	a.stop()
	b.stop()
	for name, parts := range seen.parts {
		if len(parts) == 0 || len(parts) == 6 {
			t.Fatalf("member %s read %d partitions; the two should have shared six", name, len(parts))
		}
	}

	offsets, err := c.Admin().FetchOffsets(context.Background(), "sharers")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := c.Admin().ListEndOffsets(context.Background(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(end kadm.ListedOffset) {
		got, ok := offsets.Lookup("shared", end.Partition)
		if !ok || got.At != end.Offset {
			t.Errorf("partition %d: committed %v, end %d", end.Partition, got.At, end.Offset)
		}
	})

	produceN(t, c, "shared", 600, 660)
	later := &processed{values: map[string]int{}, parts: map[string]map[int32]bool{}}
	startMember(t, c, "c", "sharers", "shared", later)
	waitUntil(t, "the 60 new records", func() bool { return later.count() == 60 })
	time.Sleep(200 * time.Millisecond)
	later.mu.Lock()
	defer later.mu.Unlock()
	for v := range later.values {
		var i int
		fmt.Sscanf(v, "r%d", &i)
		if i < 600 {
			t.Fatalf("the new member read %s again: committed offsets were not used", v)
		}
	}
}

// With ManualCommit nothing is committed until Commit is called, and a
// restarted member resumes after the last committed record.
func TestGroupManualCommit(t *testing.T) {
	c := dialTest(t)
	createTopic(t, c, "manual", 1)
	produceN(t, c, "manual", 0, 10)
	g, err := c.NewGroupConsumer("manual-group", []string{"manual"}, sdk.StartFromBeginning(), sdk.ManualCommit())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	read := 0
	err = g.Run(ctx, func(r *kgo.Record) error {
		read++
		if r.Offset == 4 {
			if err := g.Commit(ctx, r); err != nil {
				return err
			}
		}
		if read == 10 {
			return sdk.ErrStop
		}
		return nil
	})
	g.Close()
	if err != nil {
		t.Fatal(err)
	}

	g, err = c.NewGroupConsumer("manual-group", []string{"manual"}, sdk.StartFromBeginning(), sdk.ManualCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var first int64 = -1
	err = g.Run(ctx, func(r *kgo.Record) error {
		first = r.Offset
		return sdk.ErrStop
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != 5 {
		t.Fatalf("the restarted member began at offset %d, want 5 (after the committed record)", first)
	}
}

func TestGroupConsumerErrors(t *testing.T) {
	c := dialTest(t)
	if _, err := c.NewGroupConsumer("", []string{"t"}); err == nil {
		t.Fatal("an empty group name was accepted")
	}
	if _, err := c.NewGroupConsumer("g", nil); err == nil {
		t.Fatal("a group consumer without topics was accepted")
	}
	if _, err := c.NewGroupConsumer("g", []string{"t"}, sdk.WithAssignors("fastest")); err == nil {
		t.Fatal("an unknown assignor was accepted")
	}
	if _, err := sdk.ParseAssignor("range"); err != nil {
		t.Fatal(err)
	}
	// A callback's error ends Run and is returned.
	createTopic(t, c, "failing", 1)
	produceN(t, c, "failing", 0, 1)
	g, err := c.NewGroupConsumer("failing-group", []string{"failing"}, sdk.StartFromBeginning())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	boom := errors.New("boom")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.Run(ctx, func(*kgo.Record) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want the callback's error", err)
	}
}

// Admin requests name topics without creating them, even though the
// producer side of the client creates topics on first use.
func TestAdminDoesNotCreateTopics(t *testing.T) {
	c := dialTest(t)
	ctx := context.Background()
	if _, err := c.Admin().ListTopics(ctx, "never-created"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin().ListEndOffsets(ctx, "never-created"); err != nil {
		t.Fatal(err)
	}
	all, err := c.Admin().ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all.Has("never-created") {
		t.Fatal("describing a missing topic created it")
	}
}

// A client dialled with group options is one member of the group: the
// admin client it carries must not join as a second one that never
// polls (whose partitions would never be consumed).
func TestDialWithGroupOptionsJoinsOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setup := dialTest(t)
	createTopic(t, setup, "one-member", 4)
	produceN(t, setup, "one-member", 0, 40)
	c, err := sdk.Dial(ctx, sdk.WithBrokers(brokerAddr), sdk.WithCAFile(caFile),
		sdk.WithKgoOptions(kgo.ConsumerGroup("one-member-group"), kgo.ConsumeTopics("one-member"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[int32]bool{}
	for len(seen) < 4 && ctx.Err() == nil {
		c.Kgo().PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[r.Partition] = true })
	}
	if len(seen) < 4 {
		t.Fatalf("consumed from partitions %v of 4", seen)
	}
	groups, err := setup.Admin().DescribeGroups(ctx, "one-member-group")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(groups["one-member-group"].Members); n != 1 {
		t.Fatalf("the group has %d members, want 1", n)
	}
}
