package main

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/eddybroker/eddy/plugins/pdk"
)

func init() {
	pdk.OnInit(configure)
	pdk.OnPartition(partition)
}

func main() {}

// route sends keys with a prefix to a partition.
type route struct {
	prefix    []byte
	partition int
}

// The plugin's state, set by configure.
var (
	routes        []route // longest prefix first
	nullPartition int
)

func configure(c pdk.Config) error {
	if err := c.CheckKeys("prefixes", "null_partition"); err != nil {
		return err
	}
	spec, err := c.Required("prefixes")
	if err != nil {
		return err
	}
	rs, err := parseRoutes(spec)
	if err != nil {
		return err
	}
	np := 0
	if v := c["null_partition"]; v != "" {
		if np, err = strconv.Atoi(v); err != nil || np < 0 {
			return fmt.Errorf("config: null_partition %q is not a partition number", v)
		}
	}
	routes, nullPartition = rs, np
	return nil
}

// parseRoutes parses "eu-=0,us-=1" into routes, longest prefix first.
func parseRoutes(spec string) ([]route, error) {
	var rs []route
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		i := strings.LastIndexByte(entry, '=')
		if i < 0 {
			return nil, fmt.Errorf("config: prefixes: entry %q is not prefix=partition", entry)
		}
		prefix, num := entry[:i], entry[i+1:]
		if prefix == "" {
			return nil, fmt.Errorf("config: prefixes: entry %q has an empty prefix", entry)
		}
		p, err := strconv.Atoi(num)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("config: prefixes: entry %q: %q is not a partition number", entry, num)
		}
		if slices.ContainsFunc(rs, func(r route) bool { return string(r.prefix) == prefix }) {
			return nil, fmt.Errorf("config: prefixes: prefix %q appears twice", prefix)
		}
		rs = append(rs, route{prefix: []byte(prefix), partition: p})
	}
	slices.SortStableFunc(rs, func(a, b route) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	return rs, nil
}

func partition(r pdk.Record, partitions int) int {
	if r.Key == nil {
		return nullPartition
	}
	for _, rt := range routes {
		if bytes.HasPrefix(r.Key, rt.prefix) {
			return rt.partition
		}
	}
	return int(murmur2(r.Key)&0x7fffffff) % partitions
}

// murmur2 is Kafka's Utils.murmur2 (seed 0x9747b28c), the hash of the Java
// client's default partitioner.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
