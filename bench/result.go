package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// ResultVersion is the version of the JSON result format.
const ResultVersion = 1

// Result is one `eddy bench run` of one workload: every run of every
// target, in the order they ran (targets alternate), and what was derived
// from them. It is written as JSON and read back by `eddy bench compare`.
type Result struct {
	Version  int       `json:"version"`
	Workload Workload  `json:"workload"`
	Machine  Machine   `json:"machine"`
	Limits   *Limits   `json:"limits,omitempty"`
	Started  time.Time `json:"started"`
	Targets  []string  `json:"targets"`
	Runs     []Run     `json:"runs"`

	// Summary holds min/median/max of every metric per target.
	Summary []TargetSummary `json:"summary"`
	// Ratios holds each eddy target's metrics divided by the peer's,
	// computed pair by pair (the i-th run of one with the i-th of the
	// other, which ran next to each other) and then summarised.
	Ratios []Ratio `json:"ratios"`
}

// Machine describes where a result was measured.
type Machine struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	Eddy      string `json:"eddy_version,omitempty"`
}

// Run is one run of one target: a fresh broker, the workload, the figures.
type Run struct {
	Target string `json:"target"`
	// Index counts this target's runs from 0; runs with the same index of
	// different targets ran back to back and are paired for ratios.
	Index   int       `json:"index"`
	Started time.Time `json:"started"`
	// Rate is the open-loop rate the producers aimed for (records/s), 0
	// when they sent as fast as they could.
	Rate float64 `json:"rate,omitempty"`

	Sent     int64 `json:"sent"`     // records handed to the client
	Acked    int64 `json:"acked"`    // records the broker acknowledged
	Failed   int64 `json:"failed"`   // records that failed (error counted, not retried)
	Consumed int64 `json:"consumed"` // records consumers received in the measured phase

	Seconds float64 `json:"seconds"` // length of the measured phase
	// Metrics holds the figures by name (see the Metric constants);
	// a metric a workload does not measure is absent.
	Metrics map[string]float64 `json:"metrics"`
	// Latency is the CDF of produce-acknowledgement latency (produce
	// workloads) or end-to-end latency (latency workloads), measured from
	// each record's intended send time.
	Latency []CDFPoint `json:"latency,omitempty"`
	// Error is set when the run failed; its metrics are not summarised.
	Error string `json:"error,omitempty"`
}

// CDFPoint is one point of a latency distribution.
type CDFPoint struct {
	Percentile float64 `json:"percentile"` // 0–100
	Millis     float64 `json:"ms"`
}

// Metric names. "Higher is better" holds for throughput; for the rest
// lower is better (see HigherIsBetter).
const (
	MetricRecordsPerSec   = "records_per_sec"
	MetricMBPerSec        = "mb_per_sec"
	MetricConsumeRecsPerS = "consume_records_per_sec"
	MetricConsumeMBPerSec = "consume_mb_per_sec"
	MetricCPUMicrosPerRec = "cpu_us_per_record"
	MetricP50Millis       = "p50_ms"
	MetricP99Millis       = "p99_ms"
	MetricP999Millis      = "p999_ms"
	MetricMaxMillis       = "max_ms"
	MetricPeakRSSMiB      = "peak_rss_mib"
	MetricIdleCPUPercent  = "idle_cpu_percent" // % of one core while idle
	MetricHeapMiB         = "heap_mib"
	MetricLoad1           = "load1" // the machine's 1-minute load average at the end
)

// HigherIsBetter reports whether a larger value of metric is an
// improvement.
func HigherIsBetter(metric string) bool {
	switch metric {
	case MetricRecordsPerSec, MetricMBPerSec, MetricConsumeRecsPerS, MetricConsumeMBPerSec:
		return true
	}
	return false
}

// Stat is min, median and max over runs.
type Stat struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// TargetSummary is the Stat of every metric of one target.
type TargetSummary struct {
	Target  string          `json:"target"`
	Metrics map[string]Stat `json:"metrics"`
}

// Ratio is Target's metric divided by Peer's, pair by pair.
type Ratio struct {
	Target string `json:"target"`
	Peer   string `json:"peer"`
	Metric string `json:"metric"`
	Stat
}

// ReadResult reads a result JSON file.
func ReadResult(file string) (*Result, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if r.Version != ResultVersion {
		return nil, fmt.Errorf("%s: result format version %d, this eddy reads version %d", file, r.Version, ResultVersion)
	}
	return &r, nil
}
