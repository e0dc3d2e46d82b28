package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/plugins"
	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// pluginCache holds the plugins topics attach. An entry is resolved again
// only when the metadata changes, and keeps its loaded plugin while the
// topic still attaches the same module with the same settings: the host
// hashes a module on Load, which the produce path must not pay. A plugin
// no topic attaches any more is closed, freeing its warm instances.
type pluginCache struct {
	mu sync.Mutex
	// byKey: "<topic>\x00<attachment config>" → what it resolved to.
	byKey map[string]*attachedPlugin
}

type attachedPlugin struct {
	topic, key string
	sha        string
	settings   map[string]string
	version    *meta.PluginVersion
	plugin     *plugins.Plugin // nil when loading failed
	err        error
	checked    *meta.State // the metadata this entry was resolved against
}

// attached returns the plugin a topic attaches under key (eddy.validator
// and the like), or nil when none is attached.
func (b *Broker) attached(ctx context.Context, t *meta.Topic, key, prefix string) (*plugins.Plugin, *meta.PluginVersion, error) {
	st := b.host.Meta()
	c := &b.plugins
	ref := t.Configs[key]
	if ref == "" {
		return nil, nil, nil
	}
	if b.cfg.Plugins == nil {
		return nil, nil, errors.New("this node runs no plugin host")
	}
	k := t.Name + "\x00" + key
	c.mu.Lock()
	e := c.byKey[k]
	if e != nil && e.checked == st {
		version := e.version // checked and version change under mu
		c.mu.Unlock()
		return e.plugin, version, e.err
	}
	c.mu.Unlock()

	_, pv, err := st.ResolvePlugin(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", key, ref, err)
	}
	settings := meta.PluginConfigs(t.Configs, prefix)
	if e != nil && e.plugin != nil && e.sha == pv.SHA256 && maps.Equal(e.settings, settings) {
		c.mu.Lock()
		e.checked, e.version = st, pv
		c.mu.Unlock()
		return e.plugin, pv, nil
	}
	next := &attachedPlugin{topic: t.Name, key: key, sha: pv.SHA256, settings: settings, version: pv, checked: st}
	if module, ok := st.Modules[pv.SHA256]; !ok {
		next.err = fmt.Errorf("%s %s: module %s is missing from the metadata", key, ref, pv.SHA256)
	} else {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		next.plugin, next.err = b.cfg.Plugins.Load(lctx, module, settings)
		cancel()
		if next.err != nil {
			next.err = fmt.Errorf("%s %s: %w", key, ref, next.err)
		}
	}
	c.mu.Lock()
	if c.byKey == nil {
		c.byKey = map[string]*attachedPlugin{}
	}
	old := c.byKey[k]
	c.byKey[k] = next
	c.mu.Unlock()
	if old != nil && old.plugin != nil {
		closePlugins([]*plugins.Plugin{old.plugin})
	}
	return next.plugin, next.version, next.err
}

// sweepPlugins closes, at every metadata change, the plugins of topics
// that were deleted or no longer attach one, freeing their instances. The
// broker's Run owns it.
func (b *Broker) sweepPlugins(ctx context.Context) {
	for {
		changed := b.host.MetaChanged()
		st := b.host.Meta()
		c := &b.plugins
		var stale []*plugins.Plugin
		c.mu.Lock()
		for k, e := range c.byKey {
			if t, ok := st.Topics[e.topic]; !ok || t.Configs[e.key] == "" {
				delete(c.byKey, k)
				if e.plugin != nil {
					stale = append(stale, e.plugin)
				}
			}
		}
		c.mu.Unlock()
		closePlugins(stale)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func closePlugins(ps []*plugins.Plugin) {
	for _, p := range ps {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.Close(ctx)
		cancel()
	}
}

// PluginStats returns the statistics of the plugins this node runs from
// the module with sha256 (one per topic attaching it), and whether it runs
// any.
func (b *Broker) PluginStats(sha256 string) ([]plugins.Stats, bool) {
	b.plugins.mu.Lock()
	var ps []*plugins.Plugin
	for _, e := range b.plugins.byKey {
		if e.sha == sha256 && e.plugin != nil && !slices.Contains(ps, e.plugin) {
			ps = append(ps, e.plugin)
		}
	}
	b.plugins.mu.Unlock()
	var out []plugins.Stats
	for _, p := range ps {
		out = append(out, p.Stats())
	}
	return out, len(out) > 0
}

// attachments are the configs that attach a plugin and the prefix of the
// settings they take.
var attachments = []struct{ key, prefix string }{
	{meta.ConfigValidator, meta.ValidatorConfigPrefix},
	{meta.ConfigPartitioner, meta.PartitionerConfigPrefix},
	{meta.ConfigRetention, meta.RetentionConfigPrefix},
}

// checkPluginSettings starts every plugin configs attach with the settings
// they give it, so a setting the plugin refuses (a schema that does not
// parse) is reported when the topic is configured, not at the first
// produce. Whether the plugin exists and is of the right kind the meta
// shard checks.
func (b *Broker) checkPluginSettings(ctx context.Context, configs map[string]string) error {
	st := b.host.Meta()
	for _, a := range attachments {
		ref := configs[a.key]
		if ref == "" {
			continue
		}
		_, pv, err := st.ResolvePlugin(ref)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", kerr.InvalidConfig, a.key, err)
		}
		if kind := strings.TrimPrefix(a.key, "eddy."); !slices.Contains(pv.Kinds, kind) {
			return fmt.Errorf("%w: %s: plugin %s version %d is a %s, not a %s", kerr.InvalidConfig, a.key, ref, pv.Version, strings.Join(pv.Kinds, " and "), kind)
		}
		if b.cfg.Plugins == nil {
			return fmt.Errorf("%w: %s: this node runs no plugin host", kerr.InvalidConfig, a.key)
		}
		settings := meta.PluginConfigs(configs, a.prefix)
		if settings == nil {
			settings = map[string]string{}
		}
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = b.cfg.Plugins.Inspect(ictx, st.Modules[pv.SHA256], settings)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %s=%s refuses the topic's settings (%s*): %v", kerr.InvalidConfig, a.key, ref, a.prefix, err)
		}
	}
	return nil
}

// maxValidateDecompressed bounds how far a validator's input may inflate.
const maxValidateDecompressed = 64 << 20

// errValidatorFailed: the validator itself failed; the topic fails closed.
var errValidatorFailed = errors.New("validator failed")

// recordRejections is a validator's verdict on a partition's batches: the
// produce fails with INVALID_RECORD and one error per rejected record.
type recordRejections struct {
	errs []kmsg.ProduceResponseTopicPartitionErrorRecord
	msg  string
}

func (r *recordRejections) Error() string { return r.msg }

func (r *recordRejections) Unwrap() error { return kerr.InvalidRecord }

// validate runs the topic's validator, if any, over every record of the
// partition's batches, decompressing as needed. A rejected record fails
// the whole produce and nothing of it is written.
func (b *Broker) validate(ctx context.Context, t *meta.Topic, decoded func() ([]abi.Record, error)) error {
	p, pv, err := b.attached(ctx, t, meta.ConfigValidator, meta.ValidatorConfigPrefix)
	if p == nil && err == nil {
		return nil
	}
	failOpen := t.Config(meta.ConfigValidatorOnFailure, b.host.TopicDefaults()) == "accept"
	if err != nil {
		if failOpen {
			return nil
		}
		return fmt.Errorf("%w: %w: %v", kerr.PolicyViolation, errValidatorFailed, err)
	}
	records, err := decoded()
	if err != nil {
		return err
	}
	verdicts, err := p.Validate(ctx, records)
	if errors.Is(err, plugins.ErrClosed) {
		// A new version or new settings replaced the plugin between the
		// lookup and the call: ask the one that replaced it.
		switch q, qv, qerr := b.attached(ctx, t, meta.ConfigValidator, meta.ValidatorConfigPrefix); {
		case qerr == nil && q == nil:
			return nil // detached meanwhile
		case qerr == nil:
			pv = qv
			verdicts, err = q.Validate(ctx, records)
		}
	}
	if err != nil {
		b.log.Warn().Err(err).Str("topic", t.Name).Str("plugin", t.Configs[meta.ConfigValidator]).Msg("validator failed")
		if failOpen {
			return nil
		}
		return fmt.Errorf("%w: %w: plugin %s version %d: %v", kerr.PolicyViolation, errValidatorFailed, t.Configs[meta.ConfigValidator], pv.Version, err)
	}
	rej := &recordRejections{}
	var first []string
	for i, v := range verdicts {
		if !v.Reject {
			continue
		}
		reason := v.Reason
		if reason == "" {
			reason = "rejected"
		}
		msg := fmt.Sprintf("record %d: %s", i, reason)
		rej.errs = append(rej.errs, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: int32(i), ErrorMessage: &msg})
		if len(first) < 3 {
			first = append(first, msg)
		}
	}
	if len(rej.errs) == 0 {
		return nil
	}
	more := ""
	if n := len(rej.errs) - len(first); n > 0 {
		more = fmt.Sprintf(" (and %d more)", n)
	}
	rej.msg = fmt.Sprintf("validator %s rejected %d of %d records: %s%s; nothing from this batch was written",
		t.Configs[meta.ConfigValidator], len(rej.errs), len(records), strings.Join(first, "; "), more)
	return rej
}

// pluginRecords returns a func that decodes a produce's batches (inflating
// compressed ones) into the records plugins see, once, on first call: a
// partition with no plugin never decodes, one with two decodes once. Keys
// and values alias the request.
func pluginRecords(batches []byte, headers []partlog.BatchHeader) func() ([]abi.Record, error) {
	return pluginRecordsCapped(batches, headers, maxValidateDecompressed)
}

// pluginRecordsCapped is pluginRecords with the batches' decompressed
// bytes, all together, capped at maxDecompressed (limits.max_decompressed_bytes).
func pluginRecordsCapped(batches []byte, headers []partlog.BatchHeader, maxDecompressed int) func() ([]abi.Record, error) {
	return sync.OnceValues(func() ([]abi.Record, error) { return decodeForPlugin(batches, headers, maxDecompressed) })
}

func decodeForPlugin(batches []byte, headers []partlog.BatchHeader, budget int) ([]abi.Record, error) {
	declared := 0
	for _, h := range headers {
		declared += int(h.RecordCount)
	}
	// A compressed batch may declare any count: trust it only as far as
	// the bytes on the wire could hold uncompressed records.
	records := make([]abi.Record, 0, min(declared, len(batches)/minWireRecordBytes))
	var hslab headerSlab
	base := headers[0].BaseOffset
	pos := 0
	for _, h := range headers {
		batch := batches[pos : pos+h.Size()]
		pos += h.Size()
		// The budget is shared: many small compressed batches must not
		// each inflate to the whole of it.
		inflated, err := partlog.DecodeRecordsCounted(batch, budget, func(r partlog.Record) error {
			records = append(records, abi.Record{OffsetDelta: r.Offset - base, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: hslab.copy(r.Headers)})
			return nil
		})
		budget -= inflated
		if errors.Is(err, partlog.ErrDecompressedTooLarge) {
			return nil, fmt.Errorf("%w: the compressed batches inflate past the broker's limit (limits.max_decompressed_bytes): %w", kerr.MessageTooLarge, err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", kerr.CorruptMessage, err)
		}
	}
	return records, nil
}

// minWireRecordBytes is the smallest an uncompressed record can be on the
// wire (length, attributes, timestamp and offset deltas, key and value
// lengths, header count: one byte each).
const minWireRecordBytes = 7

// headerSlab hands out the abi.Headers of many records from shared
// chunks, so that decoding a batch does not allocate once per record with
// headers. partlog reuses its header slice between records, so they must
// be copied.
type headerSlab struct{ free []abi.Header }

// copy returns a copy of hs from the slab, nil when hs is empty.
func (s *headerSlab) copy(hs []partlog.Header) []abi.Header {
	if len(hs) == 0 {
		return nil
	}
	if len(hs) > cap(s.free)-len(s.free) {
		s.free = make([]abi.Header, 0, max(256, len(hs)))
	}
	n := len(s.free)
	for _, h := range hs {
		s.free = append(s.free, abi.Header{Key: h.Key, Value: h.Value})
	}
	return s.free[n:len(s.free):len(s.free)]
}

// reset reuses the current chunk from its start: only for a caller whose
// earlier records are dead (scanRecords' fn must not keep them).
func (s *headerSlab) reset() { s.free = s.free[:0] }

// enforcePartitioner refuses, with eddy.partitioner.enforce=reject, the
// records a client placed in another partition than the topic's
// partitioner picks.
func (b *Broker) enforcePartitioner(ctx context.Context, t *meta.Topic, partition int32, decoded func() ([]abi.Record, error)) error {
	if t.Configs[meta.ConfigPartitioner] == "" || t.Config(meta.ConfigPartitionerEnforce, b.host.TopicDefaults()) != "reject" {
		return nil
	}
	p, _, err := b.attached(ctx, t, meta.ConfigPartitioner, meta.PartitionerConfigPrefix)
	if err != nil {
		return fmt.Errorf("%w: the partitioner that eddy.partitioner.enforce requires failed: %v", kerr.PolicyViolation, err)
	}
	records, err := decoded()
	if err != nil {
		return err
	}
	want, err := p.Partition(ctx, records, int32(len(t.Partitions)))
	if errors.Is(err, plugins.ErrClosed) {
		// Replaced between the lookup and the call, as in validate.
		switch q, _, qerr := b.attached(ctx, t, meta.ConfigPartitioner, meta.PartitionerConfigPrefix); {
		case qerr == nil && q == nil:
			return nil // detached meanwhile
		case qerr == nil:
			want, err = q.Partition(ctx, records, int32(len(t.Partitions)))
		}
	}
	if err != nil {
		return fmt.Errorf("%w: the partitioner that eddy.partitioner.enforce requires failed: %v", kerr.PolicyViolation, err)
	}
	rej := &recordRejections{}
	var first []string
	for i, w := range want {
		if w == partition {
			continue
		}
		msg := fmt.Sprintf("record %d: partitioner %s places key %q in partition %d, not %d", i, t.Configs[meta.ConfigPartitioner], truncate(records[i].Key, 64), w, partition)
		rej.errs = append(rej.errs, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: int32(i), ErrorMessage: &msg})
		if len(first) < 3 {
			first = append(first, msg)
		}
	}
	if len(rej.errs) == 0 {
		return nil
	}
	rej.msg = fmt.Sprintf("%d of %d records are in the wrong partition (eddy.partitioner.enforce=reject): %s; nothing from this batch was written",
		len(rej.errs), len(records), strings.Join(first, "; "))
	return rej
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// setRecordErrors copies a validator's per-record errors into the
// response (Produce v8+ carries them; older versions get the message).
func setRecordErrors(p *kmsg.ProduceResponseTopicPartition, err error) {
	var rej *recordRejections
	if errors.As(err, &rej) {
		p.ErrorRecords = slices.Clone(rej.errs)
	}
}

// maxRetentionScan bounds the records one retention check reads.
const maxRetentionScan = 1 << 20

// RetentionPolicy runs a topic's retention plugin on the leader: it walks
// the closed segments, oldest first, a read at a time, and lets the log
// start past every segment whose records all expired. It stops at the
// first record the plugin keeps, so a check usually reads one block. The
// active segment is never deleted (segment.ms rolls it). raftgroups
// proposes the result, so every replica deletes the same prefix.
func (b *Broker) RetentionPolicy(ctx context.Context, t *meta.Topic, l *partlog.Log, nowMs int64) (int64, error) {
	p, _, err := b.attached(ctx, t, meta.ConfigRetention, meta.RetentionConfigPrefix)
	if p == nil {
		return -1, err
	}
	segs := l.Segments()
	to := l.StartOffset()
	scanned := 0
	for _, s := range segs[:len(segs)-1] {
		if s.EndOffset <= to {
			continue
		}
		keep := false
		err := scanRecords(l, max(s.BaseOffset, to), s.EndOffset, func(records []abi.Record) (bool, error) {
			if scanned += len(records); scanned > maxRetentionScan {
				keep = true // the rest waits for the next check
				return false, nil
			}
			expired, err := p.RetainRecords(ctx, nowMs, records)
			if err != nil {
				return false, err
			}
			keep = slices.Contains(expired, false)
			return !keep, nil
		})
		if err != nil {
			return to, fmt.Errorf("segment at %d: %w", s.BaseOffset, err)
		}
		if keep {
			return to, nil
		}
		to = s.EndOffset
	}
	return to, nil
}

// scanRecords calls fn with the records of [from, end), one read block at
// a time, until fn says stop. The records alias the block: fn must not
// keep them.
func scanRecords(l *partlog.Log, from, end int64, fn func([]abi.Record) (bool, error)) error {
	var buf []byte
	var records []abi.Record
	var hslab headerSlab
	for off := from; off < end; {
		data, err := l.Read(off, 1<<20, buf[:0])
		if err != nil {
			return err
		}
		buf = data
		records = records[:0]
		hslab.reset()
		next := off
		for len(data) > 0 {
			h, err := partlog.ParseBatchHeader(data)
			if err != nil || h.Size() > len(data) {
				break
			}
			err = partlog.DecodeRecords(data[:h.Size()], maxValidateDecompressed, func(r partlog.Record) error {
				if r.Offset < off || r.Offset >= end {
					return nil
				}
				records = append(records, abi.Record{OffsetDelta: r.Offset - off, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: hslab.copy(r.Headers)})
				return nil
			})
			if err != nil {
				return err
			}
			next = h.LastOffset() + 1
			data = data[h.Size():]
		}
		if next <= off {
			return nil // nothing readable here
		}
		if len(records) > 0 {
			more, err := fn(records)
			if err != nil || !more {
				return err
			}
		}
		off = next
	}
	return nil
}

// pluginCollector exports every loaded plugin's figures to Prometheus,
// labelled by plugin name, version and module.
type pluginCollector struct{ b *Broker }

var (
	pluginCallsDesc = prometheus.NewDesc("eddy_plugin_calls_total", "Calls into a Wasm plugin on this node (a batch above plugins.batch_records takes several).",
		[]string{"plugin", "version"}, nil)
	pluginRecordsDesc = prometheus.NewDesc("eddy_plugin_records_total", "Records passed to a Wasm plugin on this node.",
		[]string{"plugin", "version"}, nil)
	pluginFailuresDesc = prometheus.NewDesc("eddy_plugin_failures_total", "Calls into a Wasm plugin that trapped, ran past their budget or broke the ABI, on this node.",
		[]string{"plugin", "version"}, nil)
	pluginDisabledDesc = prometheus.NewDesc("eddy_plugin_disabled", "1 when a plugin failed repeatedly and is disabled on this node.",
		[]string{"plugin", "version"}, nil)
	pluginCallSecondsDesc = prometheus.NewDesc("eddy_plugin_call_seconds_mean", "Mean duration of a call into a Wasm plugin on this node.",
		[]string{"plugin", "version"}, nil)
)

// PluginCollector returns the Prometheus collector of plugin figures.
func (b *Broker) PluginCollector() prometheus.Collector { return pluginCollector{b} }

func (c pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pluginCallsDesc, pluginRecordsDesc, pluginFailuresDesc, pluginDisabledDesc, pluginCallSecondsDesc} {
		ch <- d
	}
}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.host.Meta()
	for name, p := range st.Plugins {
		for _, v := range p.Versions {
			stats, ok := c.b.PluginStats(v.SHA256)
			if !ok {
				continue
			}
			var calls, records, failures int64
			var disabled float64
			var total time.Duration
			for _, s := range stats {
				calls += s.Calls
				records += s.Records
				failures += s.Failures
				total += s.MeanCall * time.Duration(s.Calls)
				if s.Failed {
					disabled = 1
				}
			}
			labels := []string{name, strconv.Itoa(v.Version)}
			ch <- prometheus.MustNewConstMetric(pluginCallsDesc, prometheus.CounterValue, float64(calls), labels...)
			ch <- prometheus.MustNewConstMetric(pluginRecordsDesc, prometheus.CounterValue, float64(records), labels...)
			ch <- prometheus.MustNewConstMetric(pluginFailuresDesc, prometheus.CounterValue, float64(failures), labels...)
			ch <- prometheus.MustNewConstMetric(pluginDisabledDesc, prometheus.GaugeValue, disabled, labels...)
			if calls > 0 {
				ch <- prometheus.MustNewConstMetric(pluginCallSecondsDesc, prometheus.GaugeValue, (total / time.Duration(calls)).Seconds(), labels...)
			}
		}
	}
}
