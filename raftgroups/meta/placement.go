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
