package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/eddybroker/eddy/plugins/pdk"
)

// maxCached bounds the cache of parsed TTL values.
const maxCached = 4096

// noTTL marks the absence of a TTL: the record never expires.
const noTTL = -1

func init() {
	pdk.OnInit(configure)
	pdk.OnRetain(expired)
}

func main() {}

// The plugin's state, set by configure.
var (
	header           = "ttl"
	defaultTTL int64 = noTTL              // milliseconds
	cache            = map[string]int64{} // header value -> ms, or noTTL if invalid
	warned     bool
)

func configure(c pdk.Config) error {
	if err := c.CheckKeys("header", "default_ttl"); err != nil {
		return err
	}
	header = "ttl"
	if h, ok := c["header"]; ok {
		if h == "" {
			return fmt.Errorf("config: header may not be empty")
		}
		header = h
	}
	defaultTTL = noTTL
	if d, ok := c["default_ttl"]; ok && d != "" {
		ms, ok := parseTTL(d)
		if !ok {
			return fmt.Errorf("config: default_ttl %q is neither a duration (30s, 1h) nor milliseconds", d)
		}
		defaultTTL = ms
	}
	clear(cache)
	return nil
}

func expired(r pdk.Record, nowMs int64) bool {
	if r.Timestamp < 0 {
		return false
	}
	ttl := defaultTTL
	if v, ok := r.Header(header); ok {
		if ms := lookup(v); ms != noTTL {
			ttl = ms
		}
	}
	return ttl != noTTL && nowMs-r.Timestamp >= ttl
}

// lookup parses a header value through the cache; noTTL if invalid.
func lookup(v []byte) int64 {
	if ms, ok := cache[string(v)]; ok { // no allocation: the compiler borrows v
		return ms
	}
	ms, ok := parseTTL(string(v))
	if !ok {
		ms = noTTL
		if !warned {
			warned = true
			pdk.Log(pdk.LevelWarn, fmt.Sprintf("header %s=%q is neither a duration (30s, 1h) nor milliseconds; treating it as absent (logged once)", header, v))
		}
	}
	if len(cache) < maxCached {
		cache[string(v)] = ms
	}
	return ms
}

// parseTTL parses milliseconds or a Go duration, refusing negative values.
func parseTTL(s string) (ms int64, ok bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n >= 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d.Milliseconds(), true
}
