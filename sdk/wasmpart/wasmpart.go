package wasmpart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddybroker/eddy/plugins"
	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/sdk"
)

// Partitioner is a kgo.Partitioner running partitioner plugins.
type Partitioner struct {
	client   *sdk.Client
	admin    *sdk.ClusterAdmin
	host     *plugins.Host
	fallback kgo.Partitioner

	mu     sync.RWMutex
	topics map[string]*plugins.Plugin
}

// New returns a partitioner that learns topics' plugins through c (topic
// configs) and admin (the modules). Close it when done.
func New(ctx context.Context, c *sdk.Client, admin *sdk.ClusterAdmin) (*Partitioner, error) {
	cache := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(dir, "eddy", "wasm")
	}
	host, err := plugins.NewHost(ctx, plugins.Config{CacheDir: cache})
	if err != nil {
		return nil, fmt.Errorf("wasmpart: %w", err)
	}
	return &Partitioner{client: c, admin: admin, host: host, fallback: kgo.StickyKeyPartitioner(nil), topics: map[string]*plugins.Plugin{}}, nil
}

// Prepare loads the partitioner plugins of topics (none for a topic
// without eddy.partitioner). Call it before producing to them; a topic's
// plugin is fixed from then on, so Prepare again after changing it.
func (p *Partitioner) Prepare(ctx context.Context, topics ...string) error {
	cfgs, err := p.client.Admin().DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("wasmpart: describe topic configs: %w", err)
	}
	for _, rc := range cfgs {
		if rc.Err != nil {
			return fmt.Errorf("wasmpart: configs of %s: %w", rc.Name, rc.Err)
		}
		ref := ""
		settings := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			switch {
			case c.Key == "eddy.partitioner":
				ref = *c.Value
			case strings.HasPrefix(c.Key, "eddy.partitioner.config."):
				settings[strings.TrimPrefix(c.Key, "eddy.partitioner.config.")] = *c.Value
			}
		}
		if ref == "" {
			p.mu.Lock()
			delete(p.topics, rc.Name)
			p.mu.Unlock()
			continue
		}
		name, version, pinned := strings.Cut(ref, "@")
		v := 0
		if pinned {
			if v, err = strconv.Atoi(version); err != nil || v < 1 {
				return fmt.Errorf("wasmpart: %s has eddy.partitioner=%q: the version after @ must be a positive number", rc.Name, ref)
			}
		}
		module, err := p.admin.PluginModule(ctx, name, v)
		if err != nil {
			return fmt.Errorf("wasmpart: fetch partitioner %s of %s: %w", ref, rc.Name, err)
		}
		pl, err := p.host.Load(ctx, module, settings)
		if err != nil {
			return fmt.Errorf("wasmpart: load partitioner %s of %s: %w", ref, rc.Name, err)
		}
		p.mu.Lock()
		p.topics[rc.Name] = pl
		p.mu.Unlock()
	}
	return nil
}

// ForTopic implements kgo.Partitioner.
func (p *Partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	p.mu.RLock()
	pl := p.topics[topic]
	p.mu.RUnlock()
	if pl == nil {
		return p.fallback.ForTopic(topic)
	}
	return &topicPartitioner{plugin: pl, fallback: p.fallback.ForTopic(topic)}
}

// Close releases the plugins.
func (p *Partitioner) Close(ctx context.Context) error { return p.host.Close(ctx) }

type topicPartitioner struct {
	plugin   *plugins.Plugin
	fallback kgo.TopicPartitioner
}

// RequiresConsistency: a plugin's placement must be kept when kgo retries
// or partitions become unavailable.
func (t *topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

// Partition runs the plugin for one record. If the plugin fails, the
// record goes where kgo would put it, and the broker (when it enforces)
// says so.
func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	rec := abi.Record{Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, abi.Header{Key: h.Key, Value: h.Value})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	parts, err := t.plugin.Partition(ctx, []abi.Record{rec}, int32(n))
	if err != nil || len(parts) != 1 {
		return t.fallback.Partition(r, n)
	}
	return int(parts[0])
}
