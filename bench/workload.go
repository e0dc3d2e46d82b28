package bench

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind is what a workload measures.
type Kind string

const (
	// KindProduce: producers send as fast as the in-flight window allows
	// (or at Rate); records/s, MB/s, CPU per record and ack latency.
	KindProduce Kind = "produce"
	// KindLatency: producers send at a fixed rate (Rate, or RateFraction
	// of the target's measured maximum) while consumers read; the
	// end-to-end latency histogram, corrected for coordinated omission.
	KindLatency Kind = "latency"
	// KindConsume: a topic of TopicBytes is written first, then consumers
	// read it from the beginning; consume records/s and MB/s.
	KindConsume Kind = "consume"
	// KindIdle: create the partitions and measure memory and CPU while
	// nothing is sent.
	KindIdle Kind = "idle"
)

// Workload is one declarative benchmark, read from YAML.
type Workload struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Kind        Kind   `yaml:"kind" json:"kind"`

	RecordSize  int    `yaml:"record_size" json:"record_size"`                     // value bytes
	Keys        string `yaml:"keys,omitempty" json:"keys,omitempty"`               // none | uniform | zipf
	KeySpace    int    `yaml:"key_space,omitempty" json:"key_space,omitempty"`     // distinct keys for uniform/zipf
	Partitions  int    `yaml:"partitions" json:"partitions"`                       // partitions (NATS: subjects of one stream)
	Replication int    `yaml:"replication" json:"replication"`                     // 1 → one node; 3 → three nodes
	Producers   int    `yaml:"producers" json:"producers"`                         // concurrent producer clients
	Consumers   int    `yaml:"consumers,omitempty" json:"consumers,omitempty"`     // concurrent consumer clients
	InFlight    int    `yaml:"in_flight" json:"in_flight"`                         // unacknowledged records per producer
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"` // none | lz4 | zstd | snappy | gzip (eddy)
	Acks        string `yaml:"acks,omitempty" json:"acks,omitempty"`               // all | leader | none (eddy)
	// Linger is how long eddy's client (kgo) waits to fill a batch; unset
	// keeps kgo's default (10 ms). NATS's client does not linger.
	Linger *Duration `yaml:"linger,omitempty" json:"linger,omitempty"`

	// Rate is the total records/s producers aim for, open loop: each
	// record has an intended send time and latency counts from it. 0 is
	// as fast as possible.
	Rate int `yaml:"rate,omitempty" json:"rate,omitempty"`
	// RateFraction, for latency workloads without Rate, measures the
	// target's maximum first and runs at this fraction of it.
	RateFraction float64 `yaml:"rate_fraction,omitempty" json:"rate_fraction,omitempty"`

	Duration Duration `yaml:"duration" json:"duration"`                   // measured phase
	Warmup   Duration `yaml:"warmup,omitempty" json:"warmup,omitempty"`   // before measuring
	Runs     int      `yaml:"runs,omitempty" json:"runs,omitempty"`       // per target, at least 3 for a report
	Records  int64    `yaml:"records,omitempty" json:"records,omitempty"` // fixed record count instead of Duration (produce)

	// TopicBytes is the size of the topic a consume workload reads.
	TopicBytes ByteSize `yaml:"topic_bytes,omitempty" json:"topic_bytes,omitempty"`

	// Link puts the clients behind a network namespace whose link delays
	// and drops packets (needs root, ip and tc).
	Link *LinkSpec `yaml:"link,omitempty" json:"link,omitempty"`

	// Values: random (incompressible bytes, the default) or json (a JSON
	// object of record_size bytes, as validators expect).
	Values string `yaml:"values,omitempty" json:"values,omitempty"`
	// Validator attaches a validator plugin to eddy's topic: a .wasm file,
	// or the name of an example under plugins/examples (`make plugins`
	// builds them). ValidatorConfig are its settings. NATS has no
	// equivalent: its runs show what validation costs eddy.
	Validator       string            `yaml:"validator,omitempty" json:"validator,omitempty"`
	ValidatorConfig map[string]string `yaml:"validator_config,omitempty" json:"validator_config,omitempty"`

	// Targets this workload runs against when the command line names none.
	Targets []string `yaml:"targets,omitempty" json:"targets,omitempty"`
}

// LinkSpec is a lossy link: netem delay and loss on the client's side.
type LinkSpec struct {
	Delay Duration `yaml:"delay" json:"delay"`
	Loss  float64  `yaml:"loss" json:"loss"` // percent
}

// Duration is a time.Duration written as "10s" in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads "10s", "500ms" and so on.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 10s or 500ms", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as "10s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "10s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as "1GiB", "64MiB", "512KiB" or bytes.
type ByteSize int64

// UnmarshalYAML reads sizes such as 1GiB.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// ParseByteSize reads "1GiB", "64MiB", "512KiB", "100B" or a plain number.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 1GiB, 64MiB or 4096", s)
	}
	return ByteSize(n * mult), nil
}

// ParseWorkload reads a workload from YAML, fills defaults and checks it.
func ParseWorkload(data []byte) (Workload, error) {
	var w Workload
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		return w, fmt.Errorf("workload: %w", err)
	}
	w.setDefaults()
	return w, w.Validate()
}

func (w *Workload) setDefaults() {
	if w.Kind == "" {
		w.Kind = KindProduce
	}
	if w.RecordSize == 0 {
		w.RecordSize = 1024
	}
	if w.Keys == "" {
		w.Keys = "none"
	}
	if w.KeySpace == 0 {
		w.KeySpace = 10000
	}
	if w.Partitions == 0 {
		w.Partitions = 1
	}
	if w.Replication == 0 {
		w.Replication = 1
	}
	if w.Producers == 0 {
		w.Producers = 1
	}
	if w.Consumers == 0 && (w.Kind == KindLatency || w.Kind == KindConsume) {
		w.Consumers = 1
	}
	if w.InFlight == 0 {
		w.InFlight = 1024
	}
	if w.Compression == "" {
		w.Compression = "none"
	}
	if w.Acks == "" {
		w.Acks = "all"
	}
	if w.Duration == 0 && w.Records == 0 {
		w.Duration = Duration(10 * time.Second)
	}
	if w.Runs == 0 {
		w.Runs = 3
	}
	if w.Values == "" {
		w.Values = "random"
	}
	if w.Kind == KindLatency && w.Rate == 0 && w.RateFraction == 0 {
		w.RateFraction = 0.5
	}
	if w.Kind == KindConsume && w.TopicBytes == 0 {
		w.TopicBytes = 1 << 30
	}
}

// Validate reports the first thing wrong with w, saying what to change.
func (w *Workload) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if w.Name == "" {
		bad("name is empty")
	}
	switch w.Kind {
	case KindProduce, KindLatency, KindConsume, KindIdle:
	default:
		bad("kind %q: use produce, latency, consume or idle", w.Kind)
	}
	switch w.Keys {
	case "none", "uniform", "zipf":
	default:
		bad("keys %q: use none, uniform or zipf", w.Keys)
	}
	if w.RecordSize < 16 || w.RecordSize > 1<<20 {
		bad("record_size %d: use 16 bytes to 1 MiB (the first 16 bytes carry the send time and a sequence number)", w.RecordSize)
	}
	if w.Partitions < 1 || w.Partitions > 10000 {
		bad("partitions %d: use 1 to 10000", w.Partitions)
	}
	if w.Replication != 1 && w.Replication != 3 {
		bad("replication %d: use 1 (one node) or 3 (three nodes)", w.Replication)
	}
	if w.Producers < 0 || w.Consumers < 0 || w.InFlight < 1 {
		bad("producers, consumers and in_flight must not be negative (in_flight at least 1)")
	}
	switch w.Compression {
	case "none", "lz4", "zstd", "snappy", "gzip":
	default:
		bad("compression %q: use none, lz4, zstd, snappy or gzip", w.Compression)
	}
	switch w.Acks {
	case "all", "leader", "none":
	default:
		bad("acks %q: use all, leader or none", w.Acks)
	}
	if w.Rate < 0 || w.RateFraction < 0 || w.RateFraction > 1 {
		bad("rate must not be negative and rate_fraction must be in (0, 1]")
	}
	if w.Linger != nil && (w.Linger.D() < 0 || w.Linger.D() > time.Minute) {
		bad("linger %v: use 0s to 1m", w.Linger)
	}
	if w.Values != "random" && w.Values != "json" {
		bad("values %q: use random or json", w.Values)
	}
	if w.Runs < 1 {
		bad("runs %d: at least 1 (3 or more for min/median/max)", w.Runs)
	}
	if w.Link != nil && (w.Link.Loss < 0 || w.Link.Loss >= 100) {
		bad("link.loss %v: a percentage below 100", w.Link.Loss)
	}
	return errors.Join(errs...)
}

// Nodes is how many eddy nodes (or NATS servers) the workload needs.
func (w *Workload) Nodes() int {
	if w.Replication > 1 {
		return w.Replication
	}
	return 1
}

//go:embed workloads/*.yaml
var builtin embed.FS

// Suites name groups of built-in workloads.
var Suites = map[string][]string{
	"standard": {"produce-r1", "produce-r3", "latency-r1", "latency-r1-fixed", "consume-r1", "partitions-1000", "lossy-link", "produce-validated"},
	"quick":    {"quick-produce-r1", "quick-latency-r1"},
}

// BuiltinWorkloads lists the names of the workloads compiled in.
func BuiltinWorkloads() []string {
	entries, _ := fs.ReadDir(builtin, "workloads")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// LoadWorkload returns the built-in workload called name, or reads name
// as a YAML file.
func LoadWorkload(name string) (Workload, error) {
	if data, err := builtin.ReadFile(path.Join("workloads", name+".yaml")); err == nil {
		return ParseWorkload(data)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return Workload{}, fmt.Errorf("workload %q is neither built in (%s) nor a readable file: %w", name, strings.Join(BuiltinWorkloads(), ", "), err)
	}
	w, err := ParseWorkload(data)
	if err != nil {
		return w, fmt.Errorf("%s: %w", name, err)
	}
	return w, nil
}
