package meta

import (
	"fmt"
	"hash/fnv"
	"slices"
)

// PlaceReplicas chooses replicas for count new partitions of a topic:
// partition i goes to rf consecutive nodes starting at (seed+first+i) in
// the sorted node list, so leaders and replicas spread evenly and no node
// holds two replicas of one partition. first is the index of the first new
// partition (non-zero when adding partitions). It is deterministic.
func PlaceReplicas(nodeIDs []uint64, first, count, rf int, seed uint32) ([][]uint64, error) {
	if rf < 1 {
		return nil, fmt.Errorf("replication factor must be at least 1, got %d", rf)
	}
	if rf > len(nodeIDs) {
		return nil, fmt.Errorf("replication factor %d is larger than the %d available nodes", rf, len(nodeIDs))
	}
	nodes := slices.Clone(nodeIDs)
	slices.Sort(nodes)
	out := make([][]uint64, count)
	for i := range out {
		start := (int(seed%uint32(len(nodes))) + first + i) % len(nodes)
		r := make([]uint64, rf)
		for j := range r {
			r[j] = nodes[(start+j)%len(nodes)]
		}
		out[i] = r
	}
	return out, nil
}

// PlacementSeed spreads different topics' first partitions over different nodes.
func PlacementSeed(topic string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return h.Sum32()
}

// PlanRebalance returns the reassignments that spread replicas evenly over
// nodes (the nodes to use, normally the live ones) and, by reordering,
// spread preferred leaders (each partition's first replica) evenly too.
// Replicas on nodes not in nodes are moved off them. It never puts two
// replicas of a partition on one node and moves as few replicas as it
// can. Partitions with a move in progress are left alone. Deterministic.
func PlanRebalance(st *State, nodes []uint64) []Reassign {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	if len(nodes) == 0 {
		return nil
	}
	type ref struct {
		topic string
		p     *Partition
		repl  []uint64
	}
	var parts []*ref
	count := map[uint64]int{}
	total := 0
	for _, name := range st.TopicNames() {
		for _, p := range st.Topics[name].Partitions {
			if p.Target != nil || len(p.Learners) > 0 {
				continue
			}
			parts = append(parts, &ref{topic: name, p: p, repl: slices.Clone(p.Replica)})
			for _, id := range p.Replica {
				count[id]++
			}
			total += len(p.Replica)
		}
	}
	usable := func(id uint64) bool { return slices.Contains(nodes, id) }
	upper := (total + len(nodes) - 1) / len(nodes)
	// lightest returns the least-loaded usable node not in repl.
	lightest := func(repl []uint64) uint64 {
		var best uint64
		for _, id := range nodes {
			if slices.Contains(repl, id) {
				continue
			}
			if best == 0 || count[id] < count[best] {
				best = id
			}
		}
		return best
	}
	for changed := true; changed; {
		changed = false
		for _, r := range parts {
			for i, id := range r.repl {
				c := lightest(r.repl)
				if c == 0 {
					break
				}
				if usable(id) && (count[id] <= upper && count[id]-count[c] <= 1) {
					continue
				}
				count[id]--
				count[c]++
				r.repl[i] = c
				changed = true
			}
		}
	}
	// Preferred leaders: put each partition's least-leading replica first.
	leads := map[uint64]int{}
	for _, r := range parts {
		best := 0
		for i, id := range r.repl {
			if leads[id] < leads[r.repl[best]] {
				best = i
			}
		}
		r.repl[0], r.repl[best] = r.repl[best], r.repl[0]
		leads[r.repl[0]]++
	}
	var out []Reassign
	for _, r := range parts {
		if !slices.Equal(r.repl, r.p.Replica) {
			out = append(out, Reassign{Topic: r.topic, Partition: r.p.Index, Replicas: r.repl})
		}
	}
	return out
}
