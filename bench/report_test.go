package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticResult has three runs each of eddy-quic and nats: eddy
// 100, 200, 300 records/s against nats 50, 100, 100, so the pairwise ratios
// are 2, 2, 3.
func syntheticResult() *Result {
	w := Workload{
		Name: "synthetic", Kind: KindProduce, Description: "a made-up workload",
		RecordSize: 1024, Partitions: 3, Replication: 1, Producers: 2, InFlight: 64,
		Duration: Duration(10 * time.Second), Runs: 3, Acks: "all", Keys: "none", Compression: "none",
	}
	r := &Result{
		Version:  ResultVersion,
		Workload: w,
		Machine:  Machine{Hostname: "box", OS: "linux", Arch: "amd64", CPUs: 8, MemoryMiB: 16384, GoVersion: "go1.26"},
		Limits:   &Limits{FsyncP50Micros: 120, SeqWriteMBPerSec: 900},
		Started:  time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Targets:  []string{"eddy-quic", "nats"},
	}
	eddy := []float64{100, 200, 300}
	eddyP99 := []float64{4, 5, 6}
	nats := []float64{50, 100, 100}
	natsP99 := []float64{10, 8, 12}
	cdf := func(scale float64) []CDFPoint {
		return []CDFPoint{
			{Percentile: 0, Millis: 0.2 * scale}, {Percentile: 50, Millis: 1 * scale},
			{Percentile: 90, Millis: 2 * scale}, {Percentile: 99, Millis: 5 * scale},
			{Percentile: 99.9, Millis: 9 * scale}, {Percentile: 100, Millis: 20 * scale},
		}
	}
	for i := range 3 {
		r.Runs = append(r.Runs,
			Run{Target: "eddy-quic", Index: i, Seconds: 10, Metrics: map[string]float64{
				MetricRecordsPerSec: eddy[i], MetricP99Millis: eddyP99[i], MetricCPUMicrosPerRec: 10,
			}, Latency: cdf(eddyP99[i] / 5)},
			Run{Target: "nats", Index: i, Seconds: 10, Metrics: map[string]float64{
				MetricRecordsPerSec: nats[i], MetricP99Millis: natsP99[i],
			}, Latency: cdf(natsP99[i] / 5)},
		)
	}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarize(t *testing.T) {
	r := syntheticResult()
	Summarize(r)

	s, ok := findStat(r.Summary, "eddy-quic", MetricRecordsPerSec)
	if !ok || !near(s.Min, 100) || !near(s.Median, 200) || !near(s.Max, 300) || s.N != 3 {
		t.Errorf("eddy-quic records/s = %+v, want 100/200/300 n=3", s)
	}
	s, ok = findStat(r.Summary, "nats", MetricRecordsPerSec)
	if !ok || !near(s.Min, 50) || !near(s.Median, 100) || !near(s.Max, 100) {
		t.Errorf("nats records/s = %+v, want 50/100/100", s)
	}
	ra, ok := findRatio(r.Ratios, "eddy-quic", "nats", MetricRecordsPerSec)
	if !ok || !near(ra.Min, 2) || !near(ra.Median, 2) || !near(ra.Max, 3) || ra.N != 3 {
		t.Errorf("eddy-quic/nats records/s ratio = %+v, want 2/2/3 n=3", ra)
	}
	// p99 ratios: 4/10, 5/8, 6/12 = 0.4, 0.625, 0.5.
	ra, ok = findRatio(r.Ratios, "eddy-quic", "nats", MetricP99Millis)
	if !ok || !near(ra.Min, 0.4) || !near(ra.Median, 0.5) || !near(ra.Max, 0.625) {
		t.Errorf("p99 ratio = %+v, want 0.4/0.5/0.625", ra)
	}
	// Only eddy has CPU per record: no ratio.
	if _, ok := findRatio(r.Ratios, "eddy-quic", "nats", MetricCPUMicrosPerRec); ok {
		t.Errorf("ratio of a metric nats lacks")
	}
	// Peers are never divided by each other or by eddy.
	for _, ra := range r.Ratios {
		if !IsEddyTarget(ra.Target) || IsEddyTarget(ra.Peer) {
			t.Errorf("unexpected ratio %s/%s", ra.Target, ra.Peer)
		}
	}
}

func TestSummarizeSkipsFailedAndZeroPairs(t *testing.T) {
	r := syntheticResult()
	r.Runs[2].Error = "broker died"            // eddy-quic run 1 (200)
	r.Runs[5].Metrics[MetricRecordsPerSec] = 0 // nats run 2
	r.Runs = append(r.Runs, Run{Target: "nats", Index: 3, Error: "timeout"})
	Summarize(r)

	s, _ := findStat(r.Summary, "eddy-quic", MetricRecordsPerSec)
	if s.N != 2 || !near(s.Median, 200) { // 100 and 300
		t.Errorf("eddy-quic with a failed run = %+v, want n=2 median 200", s)
	}
	// Pairs: 0 → 100/50 = 2; 1 failed; 2 has peer 0. One ratio.
	ra, ok := findRatio(r.Ratios, "eddy-quic", "nats", MetricRecordsPerSec)
	if !ok || ra.N != 1 || !near(ra.Median, 2) {
		t.Errorf("ratio = %+v, want n=1 median 2", ra)
	}
	md := SummaryMarkdown(r)
	for _, want := range []string{"broker died", "timeout", "n=2"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestStatEvenMedian(t *testing.T) {
	s := statOf([]float64{4, 1, 3, 2})
	if s.Min != 1 || s.Max != 4 || !near(s.Median, 2.5) || s.N != 4 {
		t.Errorf("statOf = %+v", s)
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{
		81437: "81,400", 1234567: "1,230,000", 999: "999", 12.345: "12.3",
		1.5: "1.50", 0.01234: "0.0123", 0: "0", -2500: "-2,500",
	} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestWriteReport(t *testing.T) {
	r := syntheticResult()
	r.Targets = append(r.Targets, "nats-async")
	for i := range 3 {
		r.Runs = append(r.Runs, Run{Target: "nats-async", Index: i, Metrics: map[string]float64{
			MetricRecordsPerSec: 400, MetricP99Millis: 1,
		}, Latency: []CDFPoint{{Percentile: 50, Millis: 0.5}, {Percentile: 99, Millis: 1}}})
	}
	Summarize(r)
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := WriteReport(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range paths {
		names[filepath.Base(p)] = true
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, want := range []string{"result.json", "summary.md", "throughput.png", "latency.png"} {
		if !names[want] {
			t.Errorf("WriteReport did not write %s (wrote %v)", want, paths)
		}
	}
	for _, png := range []string{"throughput.png", "latency.png"} {
		data, err := os.ReadFile(filepath.Join(dir, png))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG", png)
		}
	}

	back, err := ReadResult(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Workload.Name != "synthetic" || len(back.Runs) != len(r.Runs) || len(back.Runs[0].Latency) != 6 {
		t.Errorf("result.json did not round-trip: %+v", back.Workload)
	}
	ra, ok := findRatio(back.Ratios, "eddy-quic", "nats", MetricRecordsPerSec)
	if !ok || !near(ra.Median, 2) {
		t.Errorf("ratio after round trip = %+v", ra)
	}

	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# synthetic (produce)",
		"| eddy-quic / nats | produce records/s | 2.00× (2.00×–3.00×) | ↑ higher is better |",
		"| p99 latency (ms) |",
		"200 (100–300)",
		labelNATSSync, labelNATSAsync,
		"nats-async ⚠ not durable",
		"eddy-quic / nats-async ⚠ peer not durable at ack",
		"Machine limits",
		"record size 1 KiB", "partitions 3", "in_flight 64", "runs 3",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}

func TestWriteReportIdle(t *testing.T) {
	r := &Result{Workload: Workload{Name: "idle", Kind: KindIdle, Runs: 1}, Targets: []string{"eddy-tcp", "nats"}}
	r.Runs = []Run{
		{Target: "eddy-tcp", Metrics: map[string]float64{MetricPeakRSSMiB: 50, MetricIdleCPUPercent: 0.5}},
		{Target: "nats", Metrics: map[string]float64{MetricPeakRSSMiB: 80, MetricIdleCPUPercent: 1}},
	}
	paths, err := WriteReport(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || filepath.Base(paths[2]) != "throughput.png" {
		t.Errorf("idle report wrote %v, want result.json, summary.md, throughput.png", paths)
	}
}

func TestSummaryMarkdownAll(t *testing.T) {
	a := syntheticResult()
	Summarize(a)
	b := syntheticResult()
	b.Workload.Name, b.Workload.Kind = "lat", KindLatency
	Summarize(b)
	md := SummaryMarkdownAll([]*Result{a, b})
	for _, want := range []string{
		"| synthetic | produce | produce records/s | ↑ higher is better | 200 | 100 | 2.00× (2.00×–3.00×) |",
		"| lat | latency | p99 latency (ms) | ↓ lower is better | 5.00 | 10.0 | 0.500× (0.400×–0.625×) |",
		"## synthetic (produce)", "## lat (latency)", labelNATSSync,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("suite summary lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "Machine limits") != 1 {
		t.Errorf("shared machine limits should appear once")
	}
}

func TestCompare(t *testing.T) {
	mk := func(rps, p99 []float64) *Result {
		r := syntheticResult()
		for i := range 3 {
			r.Runs[2*i].Metrics[MetricRecordsPerSec] = rps[i]
			r.Runs[2*i].Metrics[MetricP99Millis] = p99[i]
		}
		Summarize(r)
		return r
	}
	base := mk([]float64{1000, 1010, 1020}, []float64{10, 10.1, 10.2})
	cand := mk([]float64{1200, 1210, 1220}, []float64{20, 20.1, 20.2})
	out := Compare(base, cand)
	lines := strings.Split(out, "\n")
	find := func(prefix, metric string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, metric) {
				return l
			}
		}
		t.Fatalf("no line for %s %s in:\n%s", prefix, metric, out)
		return ""
	}
	if l := find("eddy-quic ", "produce records/s"); !strings.Contains(l, "+19.8%") || !strings.Contains(l, "better") {
		t.Errorf("records/s line %q: want +19.8%% better", l)
	}
	if l := find("eddy-quic ", "p99 latency"); !strings.Contains(l, "worse") {
		t.Errorf("p99 line %q: want worse", l)
	}
	// nats unchanged, but its own spread (50–100 around 100) is wide: "~".
	if l := find("nats ", "produce records/s"); !strings.Contains(l, "~") || strings.Contains(l, "better") || strings.Contains(l, "worse") {
		t.Errorf("nats line %q: want ~", l)
	}
	if strings.Contains(out, "differ") {
		t.Errorf("same workload reported as differing:\n%s", out)
	}

	cand.Workload.Name = "other"
	if out := Compare(base, cand); !strings.Contains(out, "workloads differ") {
		t.Errorf("different workloads not mentioned:\n%s", out)
	}
	cand.Workload.Name = base.Workload.Name
	cand.Workload.RecordSize = 4096
	if out := Compare(base, cand); !strings.Contains(out, "record_size 1024 → 4096") {
		t.Errorf("parameter change not mentioned:\n%s", out)
	}
}
