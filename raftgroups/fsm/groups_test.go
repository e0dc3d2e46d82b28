package fsm

import (
	"bytes"
	"encoding/json"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

func groupEntry(t *testing.T, c GroupCommand) sm.Entry {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return sm.Entry{Cmd: b}
}

func TestGroupShardState(t *testing.T) {
	g := NewGroups(NewGroupStore())
	md := "m"
	for _, c := range []GroupCommand{
		{SaveGroup: &SavedGroup{Name: "a", Data: []byte("gen1")}},
		{Commit: &GroupOffsets{Group: "a", Offsets: []CommittedOffset{{Topic: "t", Partition: 0, Offset: 5, Metadata: &md}, {Topic: "t", Partition: 1, Offset: 7}}}},
		{Commit: &GroupOffsets{Group: "a", Offsets: []CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}}},
		{Commit: &GroupOffsets{Group: "b", Offsets: []CommittedOffset{{Topic: "u", Partition: 2, Offset: 1}}}},
		{DeleteOffsets: &GroupOffsets{Group: "a", Offsets: []CommittedOffset{{Topic: "t", Partition: 1}}}},
		{DeleteGroup: "b"},
	} {
		if res, err := g.Update(groupEntry(t, c)); err != nil || res.Value != 0 {
			t.Fatalf("%+v: %v %+v", c, err, res)
		}
	}
	if res, _ := g.Update(sm.Entry{Cmd: []byte("{}")}); res.Value == 0 {
		t.Fatal("an empty command was applied")
	}
	offs := g.store.Offsets("a")
	if len(offs["t"]) != 1 || offs["t"][0].Offset != 9 {
		t.Fatalf("group a offsets: %+v", offs)
	}
	if len(g.store.Offsets("b")) != 0 {
		t.Fatal("deleted group b still has offsets")
	}
	var buf bytes.Buffer
	if err := g.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	g2 := NewGroups(NewGroupStore())
	if err := g2.RecoverFromSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	snap := g2.store.Snapshot()
	if string(snap.Groups["a"]) != "gen1" || snap.Offsets["a"]["t"][0].Offset != 9 {
		t.Fatalf("recovered: %+v", snap)
	}
}
