package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/sdk"
)

// logRecord is one record of the final read.
type logRecord struct {
	partition int32
	offset    int64
	value     string
}

// finalRead reads every partition from its start to its end offset.
func (w *workload) finalRead(ctx context.Context) (map[int32][]logRecord, error) {
	cl, err := w.dial(ctx, sdk.TCP, "chaos-final-read")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := cl.Admin()
	var ends map[int32]int64
	for {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err == nil && lo.Error() == nil {
			ends = map[int32]int64{}
			lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("chaos: list end offsets: %w", ctx.Err())
		}
		time.Sleep(500 * time.Millisecond)
	}
	parts := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	out := map[int32][]logRecord{}
	if len(parts) == 0 {
		return out, nil
	}
	k, err := cl.NewKgo(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxBytes(8<<20))
	if err != nil {
		return nil, err
	}
	defer k.Close()
	done := func() bool {
		for p, end := range ends {
			rs := out[p]
			if end > 0 && (len(rs) == 0 || rs[len(rs)-1].offset < end-1) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := k.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("chaos: final read did not reach the end offsets %v: %w", ends, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out[r.Partition] = append(out[r.Partition], logRecord{partition: r.Partition, offset: r.Offset, value: string(r.Value)})
			}
		})
	}
	return out, nil
}

// replicaDigest is one node's copy of one partition.
type replicaDigest struct {
	node        int
	topic       string // from the replica's PARTITION marker
	partition   int32
	start, end  int64
	sha256      string
	openFailure string
}

// replicaDigests hashes every partition log in every stopped node's data
// directory (partitions/<shard>/log, as raftgroups lays it out): replicas
// of one partition must hold identical bytes. A shard directory whose
// marker or log cannot be read is reported, not skipped.
func replicaDigests(c *cluster) (map[string][]replicaDigest, error) {
	out := map[string][]replicaDigest{}
	for _, nd := range c.nodes {
		dir := filepath.Join(nd.dataDir, "partitions")
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			out[e.Name()] = append(out[e.Name()], digestReplica(nd.id, filepath.Join(dir, e.Name())))
		}
	}
	return out, nil
}

// digestReplica hashes the log of the partition replica in shardDir.
func digestReplica(nodeID int, shardDir string) replicaDigest {
	d := replicaDigest{node: nodeID, partition: -1}
	marker, err := os.ReadFile(filepath.Join(shardDir, "PARTITION"))
	if err != nil {
		d.openFailure = err.Error()
		return d
	}
	for _, line := range strings.Split(string(marker), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "topic":
			d.topic = v
		case "partition":
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				d.partition = int32(p)
			}
		}
	}
	// partlog.Open creates a missing log: a replica without one must not
	// pass as an empty log.
	logDir := filepath.Join(shardDir, "log")
	if _, err := os.Stat(logDir); err != nil {
		d.openFailure = err.Error()
		return d
	}
	l, err := partlog.Open(logDir, partlog.Config{}, zerolog.Nop())
	if err != nil {
		d.openFailure = err.Error()
		return d
	}
	defer l.Close()
	d.start, d.end = l.StartOffset(), l.EndOffset()
	h := sha256.New()
	var buf []byte
	for off := d.start; off < d.end; {
		buf, err = l.Read(off, 1<<20, buf[:0])
		if err != nil || len(buf) == 0 {
			d.openFailure = fmt.Sprintf("read at %d: %v", off, err)
			break
		}
		h.Write(buf)
		next := off
		for b := buf; len(b) > 0; {
			bh, err := partlog.ParseBatchHeader(b)
			if err != nil || bh.Size() > len(b) {
				break
			}
			next = bh.LastOffset() + 1
			b = b[bh.Size():]
		}
		if next <= off {
			d.openFailure = fmt.Sprintf("unparseable batch at %d", off)
			break
		}
		off = next
	}
	d.sha256 = hex.EncodeToString(h.Sum(nil))
	return d
}

// Anomalies, named as Jepsen names them.
type Anomalies struct {
	Lost        []string `json:"lost"`         // acknowledged, never read back at its offset
	Duplicated  []string `json:"duplicated"`   // one value at more than one offset
	Reordered   []string `json:"reordered"`    // a producer's records out of send order in a partition
	Skipped     []string `json:"skipped"`      // a gap in a partition's offsets
	Unexpected  []string `json:"unexpected"`   // read but never sent
	Divergent   []string `json:"divergent"`    // a consumer read a different value at an offset than the log holds
	CommitsBack []string `json:"commits_back"` // a committed group offset went backwards
	Replicas    []string `json:"replicas"`     // replicas of a partition whose bytes differ
	Crashes     []string `json:"crashes"`      // a node exited without being told to
}

// Count is the number of anomalies of every kind.
func (a Anomalies) Count() int {
	return len(a.Lost) + len(a.Duplicated) + len(a.Reordered) + len(a.Skipped) + len(a.Unexpected) +
		len(a.Divergent) + len(a.CommitsBack) + len(a.Replicas) + len(a.Crashes)
}

func (a Anomalies) String() string {
	var b strings.Builder
	for _, k := range []struct {
		name string
		list []string
	}{
		{"lost", a.Lost}, {"duplicated", a.Duplicated}, {"reordered", a.Reordered}, {"skipped", a.Skipped},
		{"unexpected", a.Unexpected}, {"divergent reads", a.Divergent}, {"committed offsets going back", a.CommitsBack},
		{"replicas differing", a.Replicas}, {"crashes", a.Crashes},
	} {
		if len(k.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d\n", k.name, len(k.list))
		for i, s := range k.list {
			if i == 20 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(k.list)-20)
				break
			}
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	return b.String()
}

// check compares what the clients were told with what the log holds, and
// the final read with the replicas on the disks of the nodes.
func check(h *history, log map[int32][]logRecord, digests map[string][]replicaDigest, nodes int) Anomalies {
	var a Anomalies
	at := map[int32]map[int64]string{}
	where := map[string][]string{}
	for p, recs := range log {
		at[p] = map[int64]string{}
		for i, r := range recs {
			at[p][r.offset] = r.value
			where[r.value] = append(where[r.value], fmt.Sprintf("%d@%d", p, r.offset))
			if i > 0 && r.offset != recs[i-1].offset+1 {
				a.Skipped = append(a.Skipped, fmt.Sprintf("partition %d: offset %d follows %d", p, r.offset, recs[i-1].offset))
			}
			if !h.sent[r.value] {
				a.Unexpected = append(a.Unexpected, fmt.Sprintf("partition %d offset %d: %q", p, r.offset, r.value))
			}
		}
	}
	for _, ak := range h.acks {
		if got, ok := at[ak.partition][ak.offset]; !ok || got != ak.value {
			a.Lost = append(a.Lost, fmt.Sprintf("%s acknowledged at partition %d offset %d (at %s); the log holds %q there, and the value at %v",
				ak.value, ak.partition, ak.offset, ak.at.Format(time.TimeOnly+".000"), got, where[ak.value]))
		}
	}
	var dups []string
	for v, ws := range where {
		if len(ws) > 1 {
			dups = append(dups, fmt.Sprintf("%s at %v", v, ws))
		}
	}
	sort.Strings(dups)
	a.Duplicated = dups
	// A producer's records in one partition must sit in the order it sent
	// them: idempotence keeps retries from reordering.
	for p, recs := range log {
		last := map[string]string{}
		for _, r := range recs {
			var prod, seq int64
			if _, err := fmt.Sscanf(r.value, "p%d-%d", &prod, &seq); err != nil {
				continue
			}
			key := fmt.Sprint(prod)
			if prev, ok := last[key]; ok && prev > r.value {
				a.Reordered = append(a.Reordered, fmt.Sprintf("partition %d: %s at offset %d after %s", p, r.value, r.offset, prev))
			}
			last[key] = r.value
		}
	}
	for _, rd := range h.reads {
		if got, ok := at[rd.partition][rd.offset]; ok && got != rd.value {
			a.Divergent = append(a.Divergent, fmt.Sprintf("%s read %q at partition %d offset %d; the log holds %q", rd.consumer, rd.value, rd.partition, rd.offset, got))
		} else if !ok {
			a.Divergent = append(a.Divergent, fmt.Sprintf("%s read %q at partition %d offset %d, beyond the final log", rd.consumer, rd.value, rd.partition, rd.offset))
		}
	}
	high := map[int32]commitObs{}
	for _, c := range h.commits {
		if prev, ok := high[c.partition]; ok && c.offset < prev.offset {
			a.CommitsBack = append(a.CommitsBack, fmt.Sprintf("partition %d: committed offset %d at %s after %d at %s",
				c.partition, c.offset, c.at.Format(time.TimeOnly+".000"), prev.offset, prev.at.Format(time.TimeOnly+".000")))
			continue
		}
		high[c.partition] = c
	}
	shards := make([]string, 0, len(digests))
	for s := range digests {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	// Every partition read back has a copy on every node that ends where
	// the read ended: replicas agreeing on an empty or missing log is no
	// match.
	readEnd := map[int32]int64{}
	for p, recs := range log {
		if n := len(recs); n > 0 {
			readEnd[p] = recs[n-1].offset + 1
		}
	}
	copies := map[int32]int{}
	for _, s := range shards {
		ds := digests[s]
		for _, d := range ds {
			if d.openFailure != "" {
				a.Replicas = append(a.Replicas, fmt.Sprintf("shard %s on node %d: %s", s, d.node, d.openFailure))
				continue
			}
			if d.topic != topic {
				continue
			}
			copies[d.partition]++
			if d.end != readEnd[d.partition] {
				a.Replicas = append(a.Replicas, fmt.Sprintf("shard %s (partition %d) on node %d holds [%d,%d); the final read ended at %d",
					s, d.partition, d.node, d.start, d.end, readEnd[d.partition]))
			}
		}
		for _, d := range ds[1:] {
			if d.start != ds[0].start || d.end != ds[0].end || d.sha256 != ds[0].sha256 {
				a.Replicas = append(a.Replicas, fmt.Sprintf("shard %s: node %d holds [%d,%d) sha256 %.12s, node %d holds [%d,%d) sha256 %.12s",
					s, ds[0].node, ds[0].start, ds[0].end, ds[0].sha256, d.node, d.start, d.end, d.sha256))
			}
		}
	}
	parts := make([]int32, 0, len(readEnd))
	for p := range readEnd {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if copies[p] != nodes {
			a.Replicas = append(a.Replicas, fmt.Sprintf("partition %d: %d readable replicas on disk, want %d", p, copies[p], nodes))
		}
	}
	return a
}
