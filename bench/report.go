package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Target labels. The durability of the peer's two configurations differs,
// and every report says so next to the figures.
const (
	labelNATSSync  = "NATS SyncAlways (fsync each write)"
	labelNATSAsync = "NATS default (background fsync, not durable at ack)"
)

// IsEddyTarget reports whether target is one of eddy's (its name starts
// with "eddy"); the others are peers.
func IsEddyTarget(target string) bool { return strings.HasPrefix(target, "eddy") }

// MainMetric is the figure a workload of kind is judged by: records/s for
// produce, p99 latency for latency, consume records/s for consume and peak
// RSS for idle workloads.
func MainMetric(kind Kind) string {
	switch kind {
	case KindLatency:
		return MetricP99Millis
	case KindConsume:
		return MetricConsumeRecsPerS
	case KindIdle:
		return MetricPeakRSSMiB
	}
	return MetricRecordsPerSec
}

// metricOrder is the order metrics are listed in; others follow by name.
var metricOrder = []string{
	MetricRecordsPerSec, MetricMBPerSec, MetricConsumeRecsPerS, MetricConsumeMBPerSec,
	MetricP50Millis, MetricP99Millis, MetricP999Millis, MetricMaxMillis,
	MetricCPUMicrosPerRec, MetricPeakRSSMiB, MetricIdleCPUPercent, MetricHeapMiB, MetricLoad1,
}

var metricLabels = map[string]string{
	MetricRecordsPerSec:   "produce records/s",
	MetricMBPerSec:        "produce MB/s",
	MetricConsumeRecsPerS: "consume records/s",
	MetricConsumeMBPerSec: "consume MB/s",
	MetricCPUMicrosPerRec: "CPU µs/record",
	MetricP50Millis:       "p50 latency (ms)",
	MetricP99Millis:       "p99 latency (ms)",
	MetricP999Millis:      "p99.9 latency (ms)",
	MetricMaxMillis:       "max latency (ms)",
	MetricPeakRSSMiB:      "peak RSS (MiB)",
	MetricIdleCPUPercent:  "idle CPU (% of a core)",
	MetricHeapMiB:         "heap (MiB)",
	MetricLoad1:           "load average (1 min)",
}

// metricLabel is a metric's name for people, with its unit.
func metricLabel(metric string) string {
	if l, ok := metricLabels[metric]; ok {
		return l
	}
	return metric
}

func sortMetrics(ms []string) []string {
	rank := func(m string) int {
		if i := slices.Index(metricOrder, m); i >= 0 {
			return i
		}
		return len(metricOrder)
	}
	sort.SliceStable(ms, func(i, j int) bool {
		ri, rj := rank(ms[i]), rank(ms[j])
		if ri != rj {
			return ri < rj
		}
		return ms[i] < ms[j]
	})
	return ms
}

// targetLabel describes a target, saying how durable an acknowledgement is.
func targetLabel(target string, w Workload) string {
	switch target {
	case "nats":
		return labelNATSSync
	case "nats-async":
		return labelNATSAsync
	}
	acks := ""
	if w.Acks != "" {
		acks = ", acks=" + w.Acks
	}
	switch {
	case target == "eddy-quic":
		return "eddy over QUIC" + acks
	case target == "eddy-tcp":
		return "eddy over TCP" + acks
	case IsEddyTarget(target):
		return "eddy" + acks
	}
	return target
}

// notDurable reports whether target acknowledges before the data is on disk.
func notDurable(target string) bool { return target == "nats-async" }

// targetHeader is a target's name in a table header, flagged when it is
// not durable at ack.
func targetHeader(target string) string {
	if notDurable(target) {
		return target + " ⚠ not durable"
	}
	return target
}

// ---------------------------------------------------------------------------
// Summaries

// resultTargets lists r.Targets, then any target that ran but is not listed.
func resultTargets(r *Result) []string {
	ts := slices.Clone(r.Targets)
	for _, run := range r.Runs {
		if !slices.Contains(ts, run.Target) {
			ts = append(ts, run.Target)
		}
	}
	return ts
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// statOf returns min, median and max of vs (the median of an even count is
// the mean of the middle two).
func statOf(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{Min: s[0], Median: med, Max: s[n-1], N: n}
}

// Summarize fills r.Summary (min/median/max of every metric per target over
// runs without Error) and r.Ratios: for every eddy target (name starts with
// "eddy") and every peer target (the others), for every metric both have,
// the ratio target/peer computed pair by pair: run Index i of the target
// with run Index i of the peer (skipping pairs where either failed or the
// peer value is 0), then min/median/max of those ratios.
func Summarize(r *Result) {
	r.Summary, r.Ratios = computeSummary(r)
}

// summaryOf returns r's stored summary, or computes it when r has none.
func summaryOf(r *Result) ([]TargetSummary, []Ratio) {
	if r.Summary != nil {
		return r.Summary, r.Ratios
	}
	return computeSummary(r)
}

func computeSummary(r *Result) ([]TargetSummary, []Ratio) {
	targets := resultTargets(r)
	summary := make([]TargetSummary, 0, len(targets))
	for _, t := range targets {
		values := map[string][]float64{}
		for _, run := range r.Runs {
			if run.Target != t || run.Error != "" {
				continue
			}
			for m, v := range run.Metrics {
				if finite(v) {
					values[m] = append(values[m], v)
				}
			}
		}
		ts := TargetSummary{Target: t, Metrics: map[string]Stat{}}
		for m, vs := range values {
			ts.Metrics[m] = statOf(vs)
		}
		summary = append(summary, ts)
	}

	// The successful run of each target and index.
	ok := map[string]map[int]*Run{}
	for i := range r.Runs {
		run := &r.Runs[i]
		if run.Error != "" {
			continue
		}
		if ok[run.Target] == nil {
			ok[run.Target] = map[int]*Run{}
		}
		ok[run.Target][run.Index] = run
	}
	ratios := []Ratio{}
	// eddy against its peers; with no peer in the run (eddy's transports
	// compared with each other), the first target against the rest.
	isSubject, isPeer := IsEddyTarget, func(t string) bool { return !IsEddyTarget(t) }
	if !slices.ContainsFunc(targets, isPeer) && len(targets) > 1 {
		first := targets[0]
		isSubject = func(t string) bool { return t == first }
		isPeer = func(t string) bool { return t != first }
	}
	for _, t := range targets {
		if !isSubject(t) {
			continue
		}
		for _, p := range targets {
			if !isPeer(p) {
				continue
			}
			byMetric := map[string][]float64{}
			for idx, tr := range ok[t] {
				pr := ok[p][idx]
				if pr == nil {
					continue
				}
				for m, tv := range tr.Metrics {
					if !ratioWorthy(m) {
						continue
					}
					pv, has := pr.Metrics[m]
					if !has || pv == 0 || !finite(pv) || !finite(tv) {
						continue
					}
					byMetric[m] = append(byMetric[m], tv/pv)
				}
			}
			metrics := make([]string, 0, len(byMetric))
			for m := range byMetric {
				metrics = append(metrics, m)
			}
			for _, m := range sortMetrics(metrics) {
				ratios = append(ratios, Ratio{Target: t, Peer: p, Metric: m, Stat: statOf(byMetric[m])})
			}
		}
	}
	return summary, ratios
}

// ratioWorthy reports whether a metric is a merit of the broker worth a
// ratio: the load average describes the machine during the run, and MB/s
// moves with records/s.
func ratioWorthy(metric string) bool {
	switch metric {
	case MetricLoad1, MetricMBPerSec, MetricConsumeMBPerSec:
		return false
	}
	return true
}

func findStat(summary []TargetSummary, target, metric string) (Stat, bool) {
	for _, ts := range summary {
		if ts.Target == target {
			s, ok := ts.Metrics[metric]
			return s, ok && s.N > 0
		}
	}
	return Stat{}, false
}

func findRatio(ratios []Ratio, target, peer, metric string) (Ratio, bool) {
	for _, ra := range ratios {
		if ra.Target == target && ra.Peer == peer && ra.Metric == metric {
			return ra, ra.N > 0
		}
	}
	return Ratio{}, false
}

// summaryMetrics lists every metric any target has, in report order.
func summaryMetrics(summary []TargetSummary) []string {
	var ms []string
	for _, ts := range summary {
		for m := range ts.Metrics {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
	}
	return sortMetrics(ms)
}

// ---------------------------------------------------------------------------
// Number formatting

// fmtNum formats v with three significant digits, grouping thousands:
// 81437 → "81,400", 12.345 → "12.3", 0.01234 → "0.0123".
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	case v == 0:
		return "0"
	}
	e := int(math.Floor(math.Log10(math.Abs(v))))
	if e >= 2 {
		scale := math.Pow10(e - 2)
		return groupThousands(int64(math.Round(v/scale) * scale))
	}
	return strconv.FormatFloat(v, 'f', 2-e, 64)
}

func groupThousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtStat is "median (min–max)".
func fmtStat(s Stat) string {
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtRatio(v float64) string { return fmtNum(v) + "×" }

func fmtRatioStat(s Stat) string {
	return fmt.Sprintf("%s (%s–%s)", fmtRatio(s.Median), fmtRatio(s.Min), fmtRatio(s.Max))
}

func betterWhen(metric string) string {
	if HigherIsBetter(metric) {
		return "↑ higher is better"
	}
	return "↓ lower is better"
}

// verdict says which side every pair favours, or "mixed".
func verdict(ra Ratio) string {
	hib := HigherIsBetter(ra.Metric)
	switch {
	case (hib && ra.Min > 1) || (!hib && ra.Max < 1):
		return "**" + ra.Target + " better** in every pair"
	case (hib && ra.Max < 1) || (!hib && ra.Min > 1):
		return ra.Peer + " better in every pair"
	}
	return "mixed"
}

// mdCell makes s safe inside a markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// ---------------------------------------------------------------------------
// Markdown

// durabilityNote is the legend of the targets present, plus a warning when
// a target is not durable at ack.
func durabilityNote(targets []string, w Workload) string {
	var b strings.Builder
	var parts []string
	for _, t := range targets {
		parts = append(parts, fmt.Sprintf("`%s` = %s", t, targetLabel(t, w)))
	}
	// The peer's two configurations are always explained, present or not.
	for _, t := range []string{"nats", "nats-async"} {
		if !slices.Contains(targets, t) {
			parts = append(parts, fmt.Sprintf("`%s` = %s (not run)", t, targetLabel(t, w)))
		}
	}
	fmt.Fprintf(&b, "**Targets:** %s.\n\n", strings.Join(parts, " · "))
	b.WriteString("> **Durability.** `nats` — " + labelNATSSync + " — is the like-for-like durability comparison: " +
		"it acknowledges a write only after it is fsynced.")
	if slices.Contains(targets, "nats-async") {
		b.WriteString(" ⚠ `nats-async` — " + labelNATSAsync + " — acknowledges writes **before they are on disk**: " +
			"a crash can lose acknowledged records, so its figures are **not** a durability-equivalent comparison " +
			"and are shown for reference only.")
	}
	b.WriteString("\n")
	return b.String()
}

func workloadParams(w Workload) string {
	size := fmt.Sprintf("%d B", w.RecordSize)
	if w.RecordSize >= 1024 && w.RecordSize%1024 == 0 {
		size = fmt.Sprintf("%d KiB", w.RecordSize/1024)
	}
	rate := "max (closed loop)"
	switch {
	case w.Rate > 0:
		rate = groupThousands(int64(w.Rate)) + " records/s"
	case w.RateFraction > 0:
		rate = fmt.Sprintf("%g × measured max", w.RateFraction)
	}
	duration := w.Duration.String()
	if w.Records > 0 {
		duration = groupThousands(w.Records) + " records"
	}
	ps := []string{
		"record size " + size,
		fmt.Sprintf("partitions %d", w.Partitions),
		fmt.Sprintf("replication %d", w.Replication),
		fmt.Sprintf("producers %d", w.Producers),
		fmt.Sprintf("consumers %d", w.Consumers),
		fmt.Sprintf("in_flight %d", w.InFlight),
		"rate " + rate,
		"duration " + duration,
	}
	if w.Warmup > 0 {
		ps = append(ps, "warmup "+w.Warmup.String())
	}
	ps = append(ps, fmt.Sprintf("runs %d", w.Runs))
	if w.Keys != "" && w.Keys != "none" {
		ps = append(ps, fmt.Sprintf("keys %s (%d)", w.Keys, w.KeySpace))
	}
	if w.Compression != "" && w.Compression != "none" {
		ps = append(ps, "compression "+w.Compression)
	}
	if w.Acks != "" {
		ps = append(ps, "acks "+w.Acks)
	}
	if w.Linger != nil {
		ps = append(ps, "eddy client linger "+w.Linger.String())
	} else {
		ps = append(ps, "eddy client linger 10ms (kgo default)")
	}
	if w.TopicBytes > 0 {
		ps = append(ps, fmt.Sprintf("topic %d MiB", int64(w.TopicBytes)>>20))
	}
	if w.Link != nil {
		ps = append(ps, fmt.Sprintf("link delay %s loss %g%%", w.Link.Delay, w.Link.Loss))
	}
	return strings.Join(ps, " · ")
}

func machineLine(m Machine) string {
	ps := []string{}
	if m.Hostname != "" {
		ps = append(ps, m.Hostname)
	}
	if m.OS != "" || m.Arch != "" {
		ps = append(ps, m.OS+"/"+m.Arch)
	}
	if m.CPUs > 0 {
		cpus := fmt.Sprintf("%d CPUs", m.CPUs)
		if m.CPUModel != "" {
			cpus += " (" + m.CPUModel + ")"
		}
		ps = append(ps, cpus)
	}
	if m.MemoryMiB > 0 {
		ps = append(ps, fmt.Sprintf("%.1f GiB RAM", float64(m.MemoryMiB)/1024))
	}
	if m.Kernel != "" {
		ps = append(ps, "kernel "+m.Kernel)
	}
	if m.GoVersion != "" {
		ps = append(ps, m.GoVersion)
	}
	if m.Eddy != "" {
		ps = append(ps, "eddy "+m.Eddy)
	}
	return strings.Join(ps, ", ")
}

// limitsMarkdown renders the machine limits.
func limitsMarkdown(l *Limits) string {
	return strings.TrimRight(l.Markdown(), "\n") + "\n"
}

// SummaryMarkdown renders r's summary: the workload and its parameters,
// the machine, a table of median (min–max) of every metric per target, the
// eddy/peer ratios, the durability of each target and, when measured, the
// machine's limits. It uses r.Summary and r.Ratios, computing them when r
// has no summary.
func SummaryMarkdown(r *Result) string {
	return summaryMarkdown(r, 1, true)
}

func summaryMarkdown(r *Result, level int, withLimits bool) string {
	h := func(n int) string { return strings.Repeat("#", level+n-1) + " " }
	summary, ratios := summaryOf(r)
	targets := resultTargets(r)
	w := r.Workload
	var b strings.Builder

	fmt.Fprintf(&b, "%s%s (%s)\n\n", h(1), w.Name, w.Kind)
	if w.Description != "" {
		b.WriteString(strings.TrimSpace(w.Description) + "\n\n")
	}
	fmt.Fprintf(&b, "**Parameters:** %s\n\n", workloadParams(w))
	fmt.Fprintf(&b, "**Machine:** %s", machineLine(r.Machine))
	if !r.Started.IsZero() {
		fmt.Fprintf(&b, "; started %s", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	}
	b.WriteString("\n\n")
	b.WriteString(durabilityNote(targets, w))
	b.WriteString("\n")

	// Metrics.
	fmt.Fprintf(&b, "%sResults: median (min–max) over runs\n\n", h(2))
	metrics := summaryMetrics(summary)
	if len(metrics) == 0 {
		b.WriteString("No run succeeded.\n\n")
	} else {
		b.WriteString("| metric |")
		for _, t := range targets {
			fmt.Fprintf(&b, " %s |", targetHeader(t))
		}
		b.WriteString("\n|---|")
		for range targets {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		main := MainMetric(w.Kind)
		for _, m := range metrics {
			label := metricLabel(m)
			if m == main {
				label = "**" + label + "**"
			}
			fmt.Fprintf(&b, "| %s |", label)
			for _, t := range targets {
				s, ok := findStat(summary, t, m)
				cell := "—"
				if ok {
					cell = fmtStat(s)
					if w.Runs > 0 && s.N < w.Runs {
						cell += fmt.Sprintf(" n=%d", s.N)
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}

	// Failures.
	var failed []string
	for _, run := range r.Runs {
		if run.Error != "" {
			e := run.Error
			if len(e) > 300 {
				e = e[:300] + "…"
			}
			failed = append(failed, fmt.Sprintf("- `%s` run %d: %s", run.Target, run.Index+1, strings.ReplaceAll(e, "\n", " ")))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "**Failed runs** (not summarised):\n\n%s\n\n", strings.Join(failed, "\n"))
	}

	// Ratios.
	if len(ratios) > 0 {
		fmt.Fprintf(&b, "%sRatios: eddy / peer, pair by pair (run i with run i), median (min–max)\n\n", h(2))
		b.WriteString("| ratio | metric | median (min–max) | better when | verdict |\n|---|---|---:|---|---|\n")
		for _, ra := range ratios {
			name := ra.Target + " / " + ra.Peer
			if notDurable(ra.Peer) {
				name += " ⚠ peer not durable at ack"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, metricLabel(ra.Metric), fmtRatioStat(ra.Stat), betterWhen(ra.Metric), verdict(ra))
		}
		b.WriteString("\n")
	}

	if r.Limits != nil {
		b.WriteString(limitsDistance(r, summary, h(2)))
	}
	if withLimits && r.Limits != nil {
		fmt.Fprintf(&b, "%sMachine limits\n\n%s\n", h(2), limitsMarkdown(r.Limits))
	}
	return b.String()
}

// limitsDistance says how close each target came to the machine: its
// median MB/s against loopback QUIC or TCP and the disk's sequential
// write, and its acknowledged records per fsync the disk could do serially.
func limitsDistance(r *Result, summary []TargetSummary, heading string) string {
	l := r.Limits
	if r.Workload.Kind != KindProduce && r.Workload.Kind != KindConsume {
		return "" // fixed rates and idle runs are not near any limit by design
	}
	var rows []string
	for _, t := range resultTargets(r) {
		mb, ok := findStat(summary, t, MetricMBPerSec)
		metric := "produce"
		if st, ok2 := findStat(summary, t, MetricConsumeMBPerSec); ok2 {
			mb, ok, metric = st, true, "consume"
		}
		if !ok || mb.Median <= 0 {
			continue
		}
		var parts []string
		wire, wireName := l.TCPMBPerSec, "TCP loopback"
		if strings.HasSuffix(t, "-quic") {
			wire, wireName = l.QUICMBPerSec, "QUIC loopback"
		}
		if wire > 0 {
			parts = append(parts, fmt.Sprintf("%.0f%% of %s (%.0f MB/s)", 100*mb.Median/wire, wireName, wire))
		}
		if l.SeqWriteMBPerSec > 0 && metric == "produce" {
			parts = append(parts, fmt.Sprintf("%.0f%% of sequential disk write (%.0f MB/s)", 100*mb.Median/l.SeqWriteMBPerSec, l.SeqWriteMBPerSec))
		}
		if rec, ok := findStat(summary, t, MetricRecordsPerSec); ok && metric == "produce" && l.SerialFsyncsPerSec > 0 {
			parts = append(parts, fmt.Sprintf("%.0f records per serial fsync the disk allows (%.0f/s)", rec.Median/l.SerialFsyncsPerSec, l.SerialFsyncsPerSec))
		}
		if cpu, ok := findStat(summary, t, MetricCPUMicrosPerRec); ok && cpu.Median > 0 && r.Machine.CPUs > 0 {
			recs, _ := findStat(summary, t, MetricRecordsPerSec)
			if metric == "consume" {
				recs, _ = findStat(summary, t, MetricConsumeRecsPerS)
			}
			ceiling := float64(r.Machine.CPUs) * 1e6 / cpu.Median
			parts = append(parts, fmt.Sprintf("%.0f%% of the %s records/s its %s µs of CPU per record allow on %d cores", 100*recs.Median/ceiling, fmtNum(ceiling), fmtNum(cpu.Median), r.Machine.CPUs))
		}
		if len(parts) > 0 {
			rows = append(rows, fmt.Sprintf("- `%s` %s %s MB/s: %s", t, metric, fmtNum(mb.Median), strings.Join(parts, "; ")))
		}
	}
	if len(rows) == 0 {
		return ""
	}
	return heading + "Distance from the machine's limits (medians)\n\n" + strings.Join(rows, "\n") + "\n\n"
}

// SummaryMarkdownAll renders several results (a suite) into one document:
// a headline table with one row per workload showing its main metric's
// median per target and the eddy/peer ratios, then one section per
// workload.
func SummaryMarkdownAll(rs []*Result) string {
	var results []*Result
	for _, r := range rs {
		if r != nil {
			results = append(results, r)
		}
	}
	var b strings.Builder
	b.WriteString("# eddy benchmark suite\n\n")
	if len(results) == 0 {
		b.WriteString("No results.\n")
		return b.String()
	}

	// Columns: every target, then every eddy/peer pair of a main metric.
	var targets []string
	type pair struct{ t, p string }
	var pairs []pair
	machines := map[string]bool{}
	for _, r := range results {
		for _, t := range resultTargets(r) {
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
		_, ratios := summaryOf(r)
		for _, ra := range ratios {
			if ra.Metric == MainMetric(r.Workload.Kind) && !slices.Contains(pairs, pair{ra.Target, ra.Peer}) {
				pairs = append(pairs, pair{ra.Target, ra.Peer})
			}
		}
		machines[machineLine(r.Machine)] = true
	}
	if len(machines) == 1 {
		fmt.Fprintf(&b, "**Machine:** %s\n\n", machineLine(results[0].Machine))
	}
	// Workloads may differ in acks; each section states its own.
	b.WriteString(durabilityNote(targets, Workload{}))
	b.WriteString("\n## Headline: main metric per workload (median; ratios median (min–max) pair by pair)\n\n")

	b.WriteString("| workload | kind | main metric | better when |")
	for _, t := range targets {
		fmt.Fprintf(&b, " %s |", targetHeader(t))
	}
	for _, p := range pairs {
		name := p.t + " / " + p.p
		if notDurable(p.p) {
			name += " ⚠"
		}
		fmt.Fprintf(&b, " %s |", name)
	}
	b.WriteString("\n|---|---|---|---|")
	for range len(targets) + len(pairs) {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, r := range results {
		summary, ratios := summaryOf(r)
		m := MainMetric(r.Workload.Kind)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |", mdCell(r.Workload.Name), r.Workload.Kind, metricLabel(m), betterWhen(m))
		for _, t := range targets {
			cell := "—"
			if s, ok := findStat(summary, t, m); ok {
				cell = fmtNum(s.Median)
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		for _, p := range pairs {
			cell := "—"
			if ra, ok := findRatio(ratios, p.t, p.p, m); ok {
				cell = fmtRatioStat(ra.Stat)
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	// Limits once when every result shares them, else per workload.
	sameLimits := true
	for _, r := range results[1:] {
		if !reflect.DeepEqual(r.Limits, results[0].Limits) {
			sameLimits = false
		}
	}
	for _, r := range results {
		b.WriteString(summaryMarkdown(r, 2, !sameLimits))
	}
	if sameLimits && results[0].Limits != nil {
		fmt.Fprintf(&b, "## Machine limits\n\n%s", limitsMarkdown(results[0].Limits))
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// Compare

// Compare prints the differences between two results of the same workload,
// a baseline a and a candidate b: for each target and metric present in
// both, the baseline median, the candidate median, the change in percent
// and "better", "worse" or "~" (the change is within max(5%, the spread
// (max-min)/median of either result)); then the same for the eddy/peer
// ratios. It says when the workloads or machines differ.
func Compare(a, b *Result) string {
	var out strings.Builder
	fmt.Fprintf(&out, "baseline:  %s (%s), %s\n", a.Workload.Name, startedString(a), machineLine(a.Machine))
	fmt.Fprintf(&out, "candidate: %s (%s), %s\n", b.Workload.Name, startedString(b), machineLine(b.Machine))
	if a.Workload.Name != b.Workload.Name {
		fmt.Fprintf(&out, "WARNING: workloads differ: baseline %q, candidate %q; the comparison may be meaningless\n", a.Workload.Name, b.Workload.Name)
	} else if d := workloadDiff(a.Workload, b.Workload); len(d) > 0 {
		fmt.Fprintf(&out, "WARNING: workload %q differs between the results: %s\n", a.Workload.Name, strings.Join(d, "; "))
	}
	if ma, mb := a.Machine, b.Machine; ma.Hostname != mb.Hostname || ma.CPUs != mb.CPUs || ma.CPUModel != mb.CPUModel || ma.MemoryMiB != mb.MemoryMiB {
		out.WriteString("note: measured on different machines\n")
	}
	out.WriteString("\n")

	sa, ra := summaryOf(a)
	sb, rb := summaryOf(b)
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmetric\tbaseline\tcandidate\tchange\tverdict\tnoise")
	rows := 0
	for _, tsa := range sa {
		var tsb *TargetSummary
		for i := range sb {
			if sb[i].Target == tsa.Target {
				tsb = &sb[i]
			}
		}
		if tsb == nil {
			continue
		}
		var metrics []string
		for m := range tsa.Metrics {
			if _, ok := tsb.Metrics[m]; ok {
				metrics = append(metrics, m)
			}
		}
		for _, m := range sortMetrics(metrics) {
			x, y := tsa.Metrics[m], tsb.Metrics[m]
			if x.N == 0 || y.N == 0 {
				continue
			}
			change, mark, noise := judge(x, y, HigherIsBetter(m))
			name := tsa.Target
			if notDurable(name) {
				name += " (not durable at ack)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t±%.0f%%\n", name, metricLabel(m), fmtNum(x.Median), fmtNum(y.Median), change, mark, noise)
			rows++
		}
	}
	if rows == 0 {
		fmt.Fprintln(tw, "(no target and metric in both results)")
	}
	tw.Flush()

	var ratioRows []string
	for _, x := range ra {
		y, ok := findRatio(rb, x.Target, x.Peer, x.Metric)
		if !ok || x.N == 0 {
			continue
		}
		change, mark, noise := judge(x.Stat, y.Stat, HigherIsBetter(x.Metric))
		name := x.Target + " / " + x.Peer
		if notDurable(x.Peer) {
			name += " (peer not durable at ack)"
		}
		ratioRows = append(ratioRows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t±%.0f%%\n", name, metricLabel(x.Metric), fmtRatio(x.Median), fmtRatio(y.Median), change, mark, noise))
	}
	if len(ratioRows) > 0 {
		out.WriteString("\n")
		tw = tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ratio\tmetric\tbaseline\tcandidate\tchange\tverdict\tnoise")
		for _, row := range ratioRows {
			fmt.Fprint(tw, row)
		}
		tw.Flush()
	}
	return out.String()
}

// judge returns the change from x to y in percent, "better", "worse" or
// "~", and the noise threshold in percent it was judged against.
func judge(x, y Stat, higherIsBetter bool) (change, mark string, noise float64) {
	noise = max(5, spread(x), spread(y))
	var pct float64
	switch {
	case x.Median == y.Median:
		pct = 0
	case x.Median == 0:
		pct = math.Inf(1)
		if y.Median < 0 {
			pct = math.Inf(-1)
		}
	default:
		pct = (y.Median - x.Median) / math.Abs(x.Median) * 100
	}
	change = fmt.Sprintf("%+.1f%%", pct)
	if math.IsInf(pct, 0) {
		change = "new"
	}
	mark = "~"
	if math.Abs(pct) >= noise {
		if (pct > 0) == higherIsBetter {
			mark = "better"
		} else {
			mark = "worse"
		}
	}
	return change, mark, noise
}

// spread is (max-min)/median in percent.
func spread(s Stat) float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / math.Abs(s.Median) * 100
}

func startedString(r *Result) string {
	if r.Started.IsZero() {
		return "start unknown"
	}
	return r.Started.UTC().Format("2006-01-02 15:04 MST")
}

// workloadDiff lists the parameters that differ between a and b.
func workloadDiff(a, b Workload) []string {
	toMap := func(w Workload) map[string]any {
		w.Description = ""
		data, _ := json.Marshal(w)
		m := map[string]any{}
		_ = json.Unmarshal(data, &m)
		return m
	}
	ma, mb := toMap(a), toMap(b)
	var keys []string
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var diffs []string
	for _, k := range keys {
		if !reflect.DeepEqual(ma[k], mb[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %v → %v", k, jsonValue(ma[k]), jsonValue(mb[k])))
		}
	}
	return diffs
}

func jsonValue(v any) string {
	if v == nil {
		return "unset"
	}
	data, _ := json.Marshal(v)
	return string(data)
}

// ---------------------------------------------------------------------------
// Files and charts

// WriteReport writes into dir (creating it) result.json (indented),
// summary.md, throughput.png (median with min–max error bars per target of
// records/s, of consume records/s for consume workloads, of peak RSS and
// idle CPU for idle workloads) and, when any run has a latency
// distribution, latency.png (the CDF of each target's median run). It
// summarises r first when r has no summary, and sets r.Version when unset.
// It returns the paths written, also when it fails part way.
func WriteReport(dir string, r *Result) ([]string, error) {
	if r.Version == 0 {
		r.Version = ResultVersion
	}
	if r.Summary == nil {
		Summarize(r)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return paths, fmt.Errorf("encoding result: %w", err)
	}
	p := filepath.Join(dir, "result.json")
	if err := os.WriteFile(p, append(data, '\n'), 0o644); err != nil {
		return paths, err
	}
	paths = append(paths, p)

	p = filepath.Join(dir, "summary.md")
	if err := os.WriteFile(p, []byte(SummaryMarkdown(r)), 0o644); err != nil {
		return paths, err
	}
	paths = append(paths, p)

	p = filepath.Join(dir, "throughput.png")
	if ok, err := safeChart(func() (bool, error) { return throughputChart(r, p) }); err != nil {
		return paths, fmt.Errorf("throughput chart: %w", err)
	} else if ok {
		paths = append(paths, p)
	}

	p = filepath.Join(dir, "latency.png")
	if ok, err := safeChart(func() (bool, error) { return latencyChart(r, p) }); err != nil {
		return paths, fmt.Errorf("latency chart: %w", err)
	} else if ok {
		paths = append(paths, p)
	}
	return paths, nil
}

// safeChart runs a chart function, turning a panic in the plotting
// library into an error: a chart must not lose a finished benchmark.
func safeChart(f func() (bool, error)) (ok bool, err error) {
	defer func() {
		if e := recover(); e != nil {
			ok, err = false, fmt.Errorf("plotting failed: %v", e)
		}
	}()
	return f()
}

var (
	eddyColors = []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
		color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff}, // cyan
	}
	natsSyncColor  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff} // red
	natsAsyncColor = color.RGBA{R: 0xa0, G: 0xa0, B: 0xa0, A: 0xff} // grey
	otherColor     = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff} // orange
)

func targetColor(target string, targets []string) color.Color {
	switch {
	case target == "nats":
		return natsSyncColor
	case notDurable(target):
		return natsAsyncColor
	case IsEddyTarget(target):
		n := 0
		for _, t := range targets {
			if t == target {
				break
			}
			if IsEddyTarget(t) {
				n++
			}
		}
		return eddyColors[n%len(eddyColors)]
	}
	return otherColor
}

// chartTargetLabel is a target's name on a chart, with its durability.
func chartTargetLabel(target string) string {
	switch target {
	case "nats":
		return "nats\n(fsync each write)"
	case "nats-async":
		return "nats-async\n(NOT durable at ack)"
	}
	return target
}

type errorPoints struct {
	plotter.XYs
	plotter.YErrors
}

// barPlot is a bar per target of metric's median with min–max error
// bars, or nil when no target has the metric.
func barPlot(r *Result, summary []TargetSummary, metric string) (*plot.Plot, error) {
	targets := resultTargets(r)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s\nmedian of runs, bars min–max", r.Workload.Name, metricLabel(metric))
	p.Y.Label.Text = metricLabel(metric)
	p.Y.Min = 0
	var pts errorPoints
	var labels plotter.XYLabels
	for i, t := range targets {
		s, ok := findStat(summary, t, metric)
		if !ok {
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{s.Median}, vg.Points(40))
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(i)
		bar.Color = targetColor(t, targets)
		bar.LineStyle.Width = 0
		p.Add(bar)
		pts.XYs = append(pts.XYs, plotter.XY{X: float64(i), Y: s.Median})
		pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{s.Median - s.Min, s.Max - s.Median})
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: s.Max})
		labels.Labels = append(labels.Labels, fmtNum(s.Median))
	}
	if len(pts.XYs) == 0 {
		return nil, nil
	}
	eb, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return nil, err
	}
	eb.LineStyle.Width = vg.Points(1.2)
	p.Add(eb)
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = draw.XCenter
		lb.TextStyle[i].Font.Size = vg.Points(9)
	}
	lb.Offset = vg.Point{Y: vg.Points(4)}
	p.Add(lb)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = chartTargetLabel(t)
	}
	p.NominalX(names...)
	// Room above the tallest bar for its label.
	top := 0.0
	for _, xy := range labels.XYs {
		top = max(top, xy.Y)
	}
	p.Y.Max = top * 1.12
	return p, nil
}

// throughputChart draws throughput.png; false when there is nothing to draw.
func throughputChart(r *Result, path string) (bool, error) {
	summary, _ := summaryOf(r)
	var metrics []string
	switch r.Workload.Kind {
	case KindIdle:
		metrics = []string{MetricPeakRSSMiB, MetricIdleCPUPercent}
	case KindConsume:
		metrics = []string{MetricConsumeRecsPerS}
	default:
		metrics = []string{MetricRecordsPerSec}
		if !slices.Contains(summaryMetrics(summary), MetricRecordsPerSec) {
			metrics = []string{MetricConsumeRecsPerS}
		}
	}
	var plots []*plot.Plot
	for _, m := range metrics {
		p, err := barPlot(r, summary, m)
		if err != nil {
			return false, err
		}
		if p != nil {
			plots = append(plots, p)
		}
	}
	switch len(plots) {
	case 0:
		return false, nil
	case 1:
		return true, plots[0].Save(6*vg.Inch, 4*vg.Inch, path)
	}
	// Side by side.
	img := vgimg.New(vg.Length(len(plots))*4*vg.Inch, 4*vg.Inch)
	canvases := plot.Align([][]*plot.Plot{plots}, draw.Tiles{
		Rows: 1, Cols: len(plots),
		PadX: vg.Points(20), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(4),
	}, draw.New(img))
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return false, err
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil, err
}

// medianLatencyRun picks, of a target's successful runs with a latency
// distribution, the one whose p99 (or, lacking it, main metric) is the
// median; nil when there is none.
func medianLatencyRun(r *Result, target string) *Run {
	var runs []*Run
	for i := range r.Runs {
		run := &r.Runs[i]
		if run.Target == target && run.Error == "" && len(run.Latency) > 0 {
			runs = append(runs, run)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	key := func(run *Run) float64 {
		if v, ok := run.Metrics[MetricP99Millis]; ok {
			return v
		}
		if v, ok := run.Metrics[MainMetric(r.Workload.Kind)]; ok {
			return v
		}
		return float64(run.Index)
	}
	sort.SliceStable(runs, func(i, j int) bool { return key(runs[i]) < key(runs[j]) })
	return runs[(len(runs)-1)/2]
}

// nines maps a percentile to the "nines" scale: 90 → 1, 99 → 2, 99.9 → 3.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }

// latencyChart draws latency.png; false when no run has a distribution.
func latencyChart(r *Result, path string) (bool, error) {
	targets := resultTargets(r)
	type series struct {
		target string
		run    *Run
	}
	var ss []series
	maxNines, hasMax := 0.0, false
	minY, maxY := math.Inf(1), 0.0
	for _, t := range targets {
		run := medianLatencyRun(r, t)
		if run == nil {
			continue
		}
		ss = append(ss, series{t, run})
		for _, pt := range run.Latency {
			if pt.Percentile >= 100 {
				hasMax = true
			} else if pt.Percentile >= 0 {
				maxNines = max(maxNines, nines(pt.Percentile))
			}
			if pt.Millis > 0 {
				minY = min(minY, pt.Millis)
			}
			maxY = max(maxY, pt.Millis)
		}
	}
	if len(ss) == 0 {
		return false, nil
	}
	// p100 (the maximum) sits half a nine right of the last finite point.
	// (Rounded first: nines(99.9) is 3.0000000000000004.)
	maxNines = math.Round(maxNines*1e6) / 1e6
	maxX := math.Max(math.Ceil(maxNines), 1)
	capX := maxX
	if hasMax {
		capX = maxNines + 0.5
		maxX = math.Max(maxX, capX)
	}
	logY := minY > 0 && maxY/minY >= 50

	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: latency CDF (median run per target)", r.Workload.Name)
	p.X.Label.Text = "percentile (nines scale)"
	p.Y.Label.Text = "latency (ms)"
	if r.Workload.Kind == KindLatency {
		p.Y.Label.Text = "end-to-end latency (ms)"
	} else {
		p.Y.Label.Text = "ack latency (ms)"
	}
	p.X.Min, p.X.Max = 0, maxX
	ticks := []plot.Tick{{Value: 0, Label: "0"}, {Value: nines(50), Label: "50"}, {Value: nines(75)}}
	for n := 1.0; n <= math.Ceil(maxNines) && n <= 9; n++ {
		label := strconv.FormatFloat(100-math.Pow10(2-int(n)), 'f', -1, 64)
		ticks = append(ticks, plot.Tick{Value: n, Label: label})
	}
	if hasMax && capX-math.Floor(capX) > 0.2 {
		ticks = append(ticks, plot.Tick{Value: capX, Label: "max"})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Min = 0
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), -vg.Points(4)

	for _, s := range ss {
		var xys plotter.XYs
		pts := slices.Clone(s.run.Latency)
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].Percentile < pts[j].Percentile })
		for _, pt := range pts {
			if pt.Percentile < 0 || !finite(pt.Millis) {
				continue
			}
			x := capX
			if pt.Percentile < 100 {
				x = nines(pt.Percentile)
			}
			y := pt.Millis
			if logY && y <= 0 {
				y = minY
			}
			xys = append(xys, plotter.XY{X: x, Y: y})
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return false, err
		}
		line.Color = targetColor(s.target, targets)
		line.Width = vg.Points(1.5)
		if notDurable(s.target) {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line)
		label := strings.ReplaceAll(chartTargetLabel(s.target), "\n", " ")
		p.Legend.Add(fmt.Sprintf("%s (run %d)", label, s.run.Index+1), line)
	}
	p.Add(plotter.NewGrid())
	return true, p.Save(6*vg.Inch, 4*vg.Inch, path)
}
