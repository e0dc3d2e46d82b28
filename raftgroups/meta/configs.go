package meta

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidConfig marks a topic config key or value eddy does not accept.
var ErrInvalidConfig = errors.New("meta: invalid topic config")

// ConfigType is the Kafka type of a config value, as DescribeConfigs reports it.
type ConfigType int8

// The config types eddy's topic configs use (values match Kafka's ConfigType).
const (
	ConfigTypeString ConfigType = 2
	ConfigTypeInt    ConfigType = 3
	ConfigTypeLong   ConfigType = 5
)

// ConfigDef describes one supported topic config.
type ConfigDef struct {
	Name    string
	Type    ConfigType
	Default string
	Min     int64    // for Int and Long
	Max     int64    // for Int and Long
	Enum    []string // for String, when restricted
	Doc     string
}

// Topic config keys eddy supports, with Kafka's names and defaults.
const (
	ConfigRetentionMs          = "retention.ms"
	ConfigRetentionBytes       = "retention.bytes"
	ConfigSegmentBytes         = "segment.bytes"
	ConfigSegmentMs            = "segment.ms"
	ConfigMaxMessageBytes      = "max.message.bytes"
	ConfigMessageTimestampType = "message.timestamp.type"
	ConfigCleanupPolicy        = "cleanup.policy"
)

// Values of message.timestamp.type.
const (
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

// ConfigDefs are the topic configs eddy understands. Unknown keys are
// refused rather than silently stored, so a typo is caught at once.
var ConfigDefs = map[string]ConfigDef{
	ConfigRetentionMs: {Name: ConfigRetentionMs, Type: ConfigTypeLong, Default: "604800000", Min: -1, Max: math.MaxInt64,
		Doc: "How long to keep a segment after its newest record, in milliseconds; -1 keeps forever. Whole segments are deleted."},
	ConfigRetentionBytes: {Name: ConfigRetentionBytes, Type: ConfigTypeLong, Default: "-1", Min: -1, Max: math.MaxInt64,
		Doc: "The size a partition may grow to before its oldest segments are deleted; -1 means no limit."},
	ConfigSegmentBytes: {Name: ConfigSegmentBytes, Type: ConfigTypeInt, Default: "1073741824", Min: 16384, Max: math.MaxInt32,
		Doc: "The size at which a partition's active segment file is closed and a new one started."},
	ConfigSegmentMs: {Name: ConfigSegmentMs, Type: ConfigTypeLong, Default: "604800000", Min: 1, Max: math.MaxInt64,
		Doc: "The age at which the active segment is rolled even if not full, so time retention can delete it."},
	ConfigMaxMessageBytes: {Name: ConfigMaxMessageBytes, Type: ConfigTypeInt, Default: "1048588", Min: 0, Max: math.MaxInt32,
		Doc: "The largest record batch the topic accepts, in bytes (after compression)."},
	ConfigMessageTimestampType: {Name: ConfigMessageTimestampType, Type: ConfigTypeString, Default: TimestampCreateTime,
		Enum: []string{TimestampCreateTime, TimestampLogAppendTime},
		Doc:  "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's time when it is appended."},
	ConfigCleanupPolicy: {Name: ConfigCleanupPolicy, Type: ConfigTypeString, Default: "delete", Enum: []string{"delete"},
		Doc: "Only delete is supported: old segments are removed by retention. Log compaction is not implemented."},
	ConfigValidator: {Name: ConfigValidator, Type: ConfigTypeString, Default: "",
		Doc: "A validator plugin (name, or name@version to pin one) run on the leader before a batch is written; settings under eddy.validator.config.*"},
	ConfigValidatorOnFailure: {Name: ConfigValidatorOnFailure, Type: ConfigTypeString, Default: "reject", Enum: []string{"reject", "accept"},
		Doc: "When the validator itself fails (traps, times out, is disabled): reject the batch (fail closed) or accept it unchecked."},
	ConfigPartitioner: {Name: ConfigPartitioner, Type: ConfigTypeString, Default: "",
		Doc: "A partitioner plugin (name or name@version) that eddy's SDK runs to place records; settings under eddy.partitioner.config.*"},
	ConfigPartitionerEnforce: {Name: ConfigPartitionerEnforce, Type: ConfigTypeString, Default: "off", Enum: []string{"off", "reject"},
		Doc: "reject: the leader refuses records a client placed in another partition than the partitioner chooses."},
	ConfigRetention: {Name: ConfigRetention, Type: ConfigTypeString, Default: "",
		Doc: "A retention plugin (name or name@version) the leader runs on a schedule to expire records; settings under eddy.retention.config.*"},
}

// IsPluginConfigKey reports whether key is a per-topic plugin setting
// (eddy.validator.config.NAME and the like).
func IsPluginConfigKey(key string) bool {
	for _, prefix := range []string{ValidatorConfigPrefix, PartitionerConfigPrefix, RetentionConfigPrefix} {
		if name, ok := strings.CutPrefix(key, prefix); ok && name != "" {
			return true
		}
	}
	return false
}

// ConfigNames returns the supported config keys in sorted order.
func ConfigNames() []string {
	names := make([]string, 0, len(ConfigDefs))
	for n := range ConfigDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ValidateConfig checks one key and value, returning an error wrapping
// ErrInvalidConfig that names the key and says what is accepted.
func ValidateConfig(key, value string) error {
	def, ok := ConfigDefs[key]
	if !ok && IsPluginConfigKey(key) {
		if len(value) > 1<<20 {
			return fmt.Errorf("%w: %s is %d bytes; plugin settings are limited to 1 MiB", ErrInvalidConfig, key, len(value))
		}
		return nil
	}
	if !ok {
		return fmt.Errorf("%w: unknown config %q (supported: %v, and plugin settings eddy.validator.config.*, eddy.partitioner.config.*, eddy.retention.config.*)", ErrInvalidConfig, key, ConfigNames())
	}
	if _, attaches := pluginAttachments[key]; attaches && value != "" {
		if _, _, err := ParsePluginRef(value); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, key, err)
		}
	}
	switch def.Type {
	case ConfigTypeInt, ConfigTypeLong:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s=%q is not an integer", ErrInvalidConfig, key, value)
		}
		if n < def.Min || n > def.Max {
			return fmt.Errorf("%w: %s=%d is out of range [%d, %d]", ErrInvalidConfig, key, n, def.Min, def.Max)
		}
	case ConfigTypeString:
		if len(def.Enum) > 0 {
			for _, e := range def.Enum {
				if value == e {
					return nil
				}
			}
			return fmt.Errorf("%w: %s=%q is not one of %v", ErrInvalidConfig, key, value, def.Enum)
		}
	}
	return nil
}

// ValidateConfigs checks every key and value of m.
func ValidateConfigs(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ValidateConfig(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Int64Config parses the effective value of an integer config; a value that
// slipped past validation falls back to the built-in default.
func (t *Topic) Int64Config(key string, defaults map[string]string) int64 {
	if n, err := strconv.ParseInt(t.Config(key, defaults), 10, 64); err == nil {
		return n
	}
	n, _ := strconv.ParseInt(ConfigDefs[key].Default, 10, 64)
	return n
}
