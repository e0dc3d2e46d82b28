package broker

import (
	"slices"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// configEntry is one topic config as described to clients.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	readOnly    bool
	def         meta.ConfigDef
	// brokerName is the broker-level config that sets the default.
	brokerName string
}

// brokerConfigNames maps a topic config to the broker config that supplies
// its default, as in Kafka.
var brokerConfigNames = map[string]string{
	meta.ConfigRetentionMs:          "log.retention.ms",
	meta.ConfigRetentionBytes:       "log.retention.bytes",
	meta.ConfigSegmentBytes:         "log.segment.bytes",
	meta.ConfigSegmentMs:            "log.roll.ms",
	meta.ConfigMaxMessageBytes:      "message.max.bytes",
	meta.ConfigMessageTimestampType: "log.message.timestamp.type",
	meta.ConfigCleanupPolicy:        "log.cleanup.policy",
}

// topicConfigEntries describes t's configs, all of them when keys is empty.
func (b *Broker) topicConfigEntries(t *meta.Topic, keys []string) []configEntry {
	if len(keys) == 0 {
		keys = meta.ConfigNames()
		for k := range t.Configs {
			if meta.IsPluginConfigKey(k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
	}
	defaults := b.host.TopicDefaults()
	var out []configEntry
	for _, k := range keys {
		def, ok := meta.ConfigDefs[k]
		if !ok && meta.IsPluginConfigKey(k) {
			if v, set := t.Configs[k]; set {
				out = append(out, configEntry{name: k, def: meta.ConfigDef{Name: k, Type: meta.ConfigTypeString}, value: v, source: kmsg.ConfigSourceDynamicTopicConfig})
			}
			continue
		}
		if !ok {
			continue
		}
		e := configEntry{name: k, def: def, brokerName: brokerConfigNames[k], readOnly: k == meta.ConfigCleanupPolicy}
		switch v, set := t.Configs[k]; {
		case set:
			e.value, e.source = v, kmsg.ConfigSourceDynamicTopicConfig
		case defaults[k] != "":
			e.value, e.source = defaults[k], kmsg.ConfigSourceStaticBrokerConfig
		default:
			e.value, e.source = def.Default, kmsg.ConfigSourceDefaultConfig
		}
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries describes the node's static broker configs.
func (b *Broker) brokerConfigEntries(keys []string) []configEntry {
	defaults := b.host.TopicDefaults()
	all := map[string]configEntry{
		"auto.create.topics.enable":  {value: strconv.FormatBool(b.cfg.AutoCreateTopics)},
		"num.partitions":             {value: strconv.Itoa(int(b.cfg.DefaultPartitions))},
		"default.replication.factor": {value: strconv.Itoa(int(b.cfg.DefaultReplicationFactor))},
		"broker.id":                  {value: strconv.FormatUint(b.host.NodeID(), 10)},
	}
	for topicKey, brokerKey := range brokerConfigNames {
		v := defaults[topicKey]
		if v == "" {
			v = meta.ConfigDefs[topicKey].Default
		}
		all[brokerKey] = configEntry{value: v, def: meta.ConfigDefs[topicKey]}
	}
	if len(keys) == 0 {
		for k := range all {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var out []configEntry
	for _, k := range keys {
		e, ok := all[k]
		if !ok {
			continue
		}
		e.name, e.source, e.readOnly = k, kmsg.ConfigSourceStaticBrokerConfig, true
		out = append(out, e)
	}
	return out
}
