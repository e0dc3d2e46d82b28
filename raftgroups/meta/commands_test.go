package meta

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func stateWithNodes(ids ...uint64) *State {
	s := NewState()
	for i, id := range ids {
		s.Apply(uint64(i+1), Command{RegisterNode: &Node{ID: id}})
	}
	return s
}

func TestApplyCreateTopic(t *testing.T) {
	tests := []struct {
		name     string
		cmd      CreateTopic
		wantCode Code
		wantMsg  string
	}{
		{"ok", CreateTopic{Name: "orders", ID: [16]byte{1}, Replicas: [][]uint64{{1}, {1}, {1}}}, OK, ""},
		{"bad name", CreateTopic{Name: "a/b", ID: [16]byte{1}, Replicas: [][]uint64{{1}}}, ErrInvalidTopic, "character '/'"},
		{"empty name", CreateTopic{Name: "", ID: [16]byte{1}, Replicas: [][]uint64{{1}}}, ErrInvalidTopic, "empty"},
		{"zero id", CreateTopic{Name: "t", Replicas: [][]uint64{{1}}}, ErrInvalidCommand, "zero"},
		{"no partitions", CreateTopic{Name: "t", ID: [16]byte{1}}, ErrInvalidParts, "between 1 and"},
		{"unknown node", CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{7}}}, ErrInvalidReplicas, "node 7"},
		{"node twice", CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1, 1}}}, ErrInvalidReplicas, "twice"},
		{"bad config", CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1}}, Configs: map[string]string{"retention.ms": "soon"}}, ErrInvalidConfigs, "not an integer"},
		{"unknown config", CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1}}, Configs: map[string]string{"retension.ms": "1"}}, ErrInvalidConfigs, "unknown config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateWithNodes(1)
			before := s.NextShardID
			cmd := tt.cmd
			res := s.Apply(10, Command{CreateTopic: &cmd})
			if res.Code != tt.wantCode || !strings.Contains(res.Message, tt.wantMsg) {
				t.Fatalf("got %d %q, want %d containing %q", res.Code, res.Message, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode != OK {
				if len(s.Topics) != 0 || s.NextShardID != before {
					t.Fatalf("refused command changed state: %d topics, next shard %d", len(s.Topics), s.NextShardID)
				}
				return
			}
			topic := s.Topics[tt.cmd.Name]
			if got, want := len(topic.Partitions), len(tt.cmd.Replicas); got != want {
				t.Fatalf("got %d partitions, want %d", got, want)
			}
			for i, p := range topic.Partitions {
				if p.Index != int32(i) || p.ShardID != before+uint64(i) {
					t.Fatalf("partition %d: index %d shard %d, want shard %d", i, p.Index, p.ShardID, before+uint64(i))
				}
			}
		})
	}
}

func TestApplyIsDeterministicAcrossEncoding(t *testing.T) {
	cmds := []Command{
		{RegisterNode: &Node{ID: 1, KafkaAddr: "127.0.0.1:9092"}},
		{CreateTopic: &CreateTopic{Name: "a", ID: [16]byte{1}, Replicas: [][]uint64{{1}, {1}}}},
		{CreateTopic: &CreateTopic{Name: "b", ID: [16]byte{2}, Replicas: [][]uint64{{1}}}},
		{CreatePartitions: &CreatePartitions{Topic: "b", Replicas: [][]uint64{{1}, {1}}}},
		{DeleteTopic: &DeleteTopic{Name: "a"}},
		{AlterConfigs: &AlterConfigs{Topic: "b", Set: map[string]string{"retention.ms": "1000"}}},
	}
	a, b := NewState(), NewState()
	for i, c := range cmds {
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		dec, err := DecodeCommand(enc)
		if err != nil {
			t.Fatal(err)
		}
		if ra, rb := a.Apply(uint64(i+1), c), b.Apply(uint64(i+1), dec); ra != rb || ra.Code != OK {
			t.Fatalf("command %d: results %+v and %+v", i, ra, rb)
		}
	}
	tb := b.Topics["b"]
	if len(tb.Partitions) != 3 || tb.Partitions[2].ShardID != FirstPartitionShardID+4 {
		t.Fatalf("topic b partitions: %+v", tb.Partitions)
	}
	if tb.Config(ConfigRetentionMs, nil) != "1000" || tb.Config(ConfigSegmentBytes, nil) != "1073741824" {
		t.Fatalf("configs: %v", tb.Configs)
	}
	// A deleted topic's shard ids are never reused.
	b.Apply(100, Command{CreateTopic: &CreateTopic{Name: "a", ID: [16]byte{3}, Replicas: [][]uint64{{1}}}})
	if got := b.Topics["a"].Partitions[0].ShardID; got != FirstPartitionShardID+5 {
		t.Fatalf("recreated topic got shard %d, want a fresh one", got)
	}
}

func TestAlterConfigs(t *testing.T) {
	s := stateWithNodes(1)
	s.Apply(2, Command{CreateTopic: &CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1}},
		Configs: map[string]string{"retention.ms": "5", "segment.ms": "6"}}})
	if r := s.Apply(3, Command{AlterConfigs: &AlterConfigs{Topic: "t", Delete: []string{"segment.ms"}, Set: map[string]string{"retention.bytes": "10"}}}); r.Code != OK {
		t.Fatal(r)
	}
	if got := s.Topics["t"].Configs; len(got) != 2 || got["retention.ms"] != "5" || got["retention.bytes"] != "10" {
		t.Fatalf("incremental alter: %v", got)
	}
	if r := s.Apply(4, Command{AlterConfigs: &AlterConfigs{Topic: "t", Replace: true, Set: map[string]string{"segment.ms": "7"}}}); r.Code != OK {
		t.Fatal(r)
	}
	if got := s.Topics["t"].Configs; len(got) != 1 || got["segment.ms"] != "7" {
		t.Fatalf("replace: %v", got)
	}
	if r := s.Apply(5, Command{AlterConfigs: &AlterConfigs{Topic: "t", Set: map[string]string{"message.timestamp.type": "Wallclock"}}}); r.Code != ErrInvalidConfigs {
		t.Fatalf("bad enum accepted: %+v", r)
	}
	if r := s.Apply(6, Command{AlterConfigs: &AlterConfigs{Topic: "nope"}}); r.Code != ErrUnknownTopic {
		t.Fatalf("unknown topic: %+v", r)
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := stateWithNodes(1)
	s.Apply(2, Command{CreateTopic: &CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1}}, Configs: map[string]string{"retention.ms": "5"}}})
	c := s.Clone()
	c.Topics["t"].Configs["retention.ms"] = "9"
	c.Topics["t"].Partitions[0].Replica[0] = 42
	c.Nodes[1].KafkaAddr = "x"
	if s.Topics["t"].Configs["retention.ms"] != "5" || s.Topics["t"].Partitions[0].Replica[0] != 1 || s.Nodes[1].KafkaAddr != "" {
		t.Fatal("clone shares memory with the original")
	}
}

func TestPlaceReplicas(t *testing.T) {
	got, err := PlaceReplicas([]uint64{3, 1, 2}, 0, 4, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]uint64{{1, 2}, {2, 3}, {3, 1}, {1, 2}}
	for i := range want {
		if len(got[i]) != 2 || got[i][0] != want[i][0] || got[i][1] != want[i][1] {
			t.Fatalf("partition %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := PlaceReplicas([]uint64{1}, 0, 1, 2, 0); err == nil || !strings.Contains(err.Error(), "larger than the 1 available") {
		t.Fatalf("rf above node count: %v", err)
	}
}

func TestReassignSteps(t *testing.T) {
	s := stateWithNodes(1, 2, 3, 4)
	s.Apply(10, Command{CreateTopic: &CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: [][]uint64{{1, 2, 3}}}})
	p := s.Topics["t"].Partitions[0]
	step := func(c Command) {
		t.Helper()
		if r := s.Apply(11, c); r.Code != OK {
			t.Fatal(r)
		}
	}
	step(Command{Reassign: &Reassign{Topic: "t", Replicas: []uint64{4, 2, 3}}})
	if !slices.Equal(p.Target, []uint64{4, 2, 3}) {
		t.Fatalf("target %v", p.Target)
	}
	step(Command{ReplicaChange: &ReplicaChange{Topic: "t", Node: 4, Op: ChangeLearner}})
	if !p.Hosts(4) || p.Bootstraps(4) {
		t.Fatalf("learner 4: hosts %v bootstraps %v", p.Hosts(4), p.Bootstraps(4))
	}
	step(Command{ReplicaChange: &ReplicaChange{Topic: "t", Node: 4, Op: ChangePromote}})
	step(Command{ReplicaChange: &ReplicaChange{Topic: "t", Node: 1, Op: ChangeRemove}})
	if p.Target != nil || !slices.Equal(p.Replica, []uint64{4, 2, 3}) || len(p.Learners) != 0 {
		t.Fatalf("after the move: replicas %v target %v learners %v", p.Replica, p.Target, p.Learners)
	}
	// Founder 1 left; if it comes back it must join, not bootstrap.
	if p.Bootstraps(1) || !p.Bootstraps(2) {
		t.Fatalf("bootstraps: 1 %v 2 %v", p.Bootstraps(1), p.Bootstraps(2))
	}
	if r := s.Apply(12, Command{Reassign: &Reassign{Topic: "t", Replicas: []uint64{4, 4}}}); r.Code != ErrInvalidReplicas {
		t.Fatalf("duplicate target accepted: %+v", r)
	}
	if r := s.Apply(13, Command{ReplicaChange: &ReplicaChange{Topic: "t", Node: 9, Op: "explode"}}); r.Code != ErrInvalidCommand {
		t.Fatalf("unknown op accepted: %+v", r)
	}
}

func TestPlanRebalance(t *testing.T) {
	s := stateWithNodes(1, 2, 3, 4)
	reps, _ := PlaceReplicas([]uint64{1, 2, 3}, 0, 6, 3, 0)
	s.Apply(10, Command{CreateTopic: &CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: reps}})
	plan := PlanRebalance(s, []uint64{1, 2, 3, 4})
	for _, r := range plan {
		s.Apply(11, Command{Reassign: &r})
	}
	count, leads := map[uint64]int{}, map[uint64]int{}
	for _, p := range s.Topics["t"].Partitions {
		want := p.Replica
		if p.Target != nil {
			want = p.Target
		}
		seen := map[uint64]bool{}
		for _, id := range want {
			if seen[id] {
				t.Fatalf("partition %d placed twice on node %d: %v", p.Index, id, want)
			}
			seen[id] = true
			count[id]++
		}
		leads[want[0]]++
	}
	// 18 replicas over 4 nodes: 4 or 5 each; 6 leaders: 1 or 2 each.
	for id := uint64(1); id <= 4; id++ {
		if count[id] < 4 || count[id] > 5 || leads[id] < 1 || leads[id] > 2 {
			t.Fatalf("node %d: %d replicas, %d preferred leaders (all: %v %v)", id, count[id], leads[id], count, leads)
		}
	}
	// A dead node is emptied.
	plan = PlanRebalance(stateWithTopic(t), []uint64{1, 2})
	for _, r := range plan {
		if slices.Contains(r.Replicas, 3) {
			t.Fatalf("plan keeps a replica on node 3, which is not usable: %+v", r)
		}
	}
	if len(plan) == 0 {
		t.Fatal("nothing moved off node 3")
	}
}

func stateWithTopic(t *testing.T) *State {
	s := stateWithNodes(1, 2, 3)
	reps, _ := PlaceReplicas([]uint64{1, 2, 3}, 0, 3, 2, 0)
	if r := s.Apply(10, Command{CreateTopic: &CreateTopic{Name: "t", ID: [16]byte{1}, Replicas: reps}}); r.Code != OK {
		t.Fatal(r)
	}
	return s
}

func TestProducerIDBlocks(t *testing.T) {
	s := stateWithNodes(1, 2)
	s.Apply(5, Command{ProducerIDs: &ProducerIDs{Node: 1, Count: 100}})
	s.Apply(6, Command{ProducerIDs: &ProducerIDs{Node: 2, Count: 100}})
	s.Apply(7, Command{ProducerIDs: &ProducerIDs{Node: 1, Count: 100}})
	b1, b2 := s.ProducerIDBlocks[1], s.ProducerIDBlocks[2]
	if b1 != [2]int64{1200, 1300} || b2 != [2]int64{1100, 1200} {
		t.Fatalf("blocks %v %v", b1, b2)
	}
	if r := s.Apply(8, Command{ProducerIDs: &ProducerIDs{Node: 1, Count: 0}}); r.Code != ErrInvalidCommand {
		t.Fatalf("empty block accepted: %+v", r)
	}
}

func TestGroupShards(t *testing.T) {
	s := stateWithNodes(1, 2, 3)
	if s.GroupShardFor("g") != nil {
		t.Fatal("group shard before they exist")
	}
	reps, _ := PlaceReplicas([]uint64{1, 2, 3}, 0, 4, 3, 0)
	if r := s.Apply(5, Command{CreateGroupShards: &CreateGroupShards{Replicas: reps}}); r.Code != OK {
		t.Fatal(r)
	}
	// A second creation (a racing leader) changes nothing.
	s.Apply(6, Command{CreateGroupShards: &CreateGroupShards{Replicas: reps[:1]}})
	if len(s.GroupShards) != 4 || s.GroupShards[3].ShardID != FirstGroupShardID+3 {
		t.Fatalf("group shards: %+v", s.GroupShards)
	}
	seen := map[uint64]bool{}
	for i := range 100 {
		seen[s.GroupShardFor(fmt.Sprintf("group-%d", i)).ShardID] = true
	}
	if len(seen) != 4 {
		t.Fatalf("100 groups landed on %d of 4 shards", len(seen))
	}
	if s.GroupShardFor("orders").ShardID != s.Clone().GroupShardFor("orders").ShardID {
		t.Fatal("a group's shard changed across a clone")
	}
}
