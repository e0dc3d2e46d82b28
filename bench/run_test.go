package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTinyWorkloadEveryTarget runs a tiny workload of each kind against
// every target and checks the result's structure and counts; it asserts
// nothing about speed.
func TestTinyWorkloadEveryTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	all := TargetNames()
	for _, tc := range []struct {
		yaml  string
		check func(t *testing.T, r Run)
	}{
		{yaml: `
name: tiny-produce
kind: produce
record_size: 256
partitions: 2
producers: 2
in_flight: 64
records: 1500
runs: 2
`, check: func(t *testing.T, r Run) {
			if r.Sent != 1500 || r.Acked != 1500 || r.Failed != 0 {
				t.Errorf("%s run %d: sent %d, acked %d, failed %d; want 1500 sent and acknowledged", r.Target, r.Index, r.Sent, r.Acked, r.Failed)
			}
			for _, m := range []string{MetricRecordsPerSec, MetricMBPerSec, MetricCPUMicrosPerRec, MetricP50Millis, MetricP99Millis, MetricPeakRSSMiB} {
				if v, ok := r.Metrics[m]; !ok || v <= 0 {
					t.Errorf("%s run %d: metric %s = %v, want > 0", r.Target, r.Index, m, v)
				}
			}
			if len(r.Latency) == 0 {
				t.Errorf("%s run %d: no latency CDF", r.Target, r.Index)
			}
		}},
		{yaml: `
name: tiny-latency
kind: latency
record_size: 128
partitions: 2
keys: zipf
rate: 400
duration: 1s
runs: 1
`, check: func(t *testing.T, r Run) {
			if r.Acked == 0 || r.Consumed != r.Acked {
				t.Errorf("%s: acked %d, consumed %d; every acknowledged record should reach the consumer", r.Target, r.Acked, r.Consumed)
			}
			if r.Metrics[MetricP99Millis] <= 0 || r.Metrics[MetricP99Millis] < r.Metrics[MetricP50Millis] {
				t.Errorf("%s: p50 %v, p99 %v", r.Target, r.Metrics[MetricP50Millis], r.Metrics[MetricP99Millis])
			}
		}},
		{yaml: `
name: tiny-consume
kind: consume
record_size: 512
partitions: 3
records: 3000
consumers: 2
runs: 1
`, check: func(t *testing.T, r Run) {
			if r.Acked != 3000 || r.Consumed != 3000 {
				t.Errorf("%s: filled %d, consumed %d; want 3000 each", r.Target, r.Acked, r.Consumed)
			}
			if r.Metrics[MetricConsumeRecsPerS] <= 0 {
				t.Errorf("%s: consume rate %v", r.Target, r.Metrics[MetricConsumeRecsPerS])
			}
		}},
	} {
		w, err := ParseWorkload([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(w.Name, func(t *testing.T) {
			res, err := RunWorkload(ctx, w, Options{Targets: all, DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Runs) != len(all)*w.Runs {
				t.Fatalf("%d runs, want %d", len(res.Runs), len(all)*w.Runs)
			}
			// Targets alternate: A B C D A B C D.
			for i, r := range res.Runs {
				if want := all[i%len(all)]; r.Target != want || r.Index != i/len(all) {
					t.Errorf("run %d is %s #%d, want %s #%d", i, r.Target, r.Index, want, i/len(all))
				}
				if r.Error != "" {
					t.Fatalf("%s run %d failed: %s", r.Target, r.Index, r.Error)
				}
				tc.check(t, r)
			}
			if len(res.Summary) != len(all) {
				t.Errorf("summary has %d targets, want %d", len(res.Summary), len(all))
			}
			if len(res.Ratios) == 0 {
				t.Error("no eddy/peer ratios")
			}
			dir := t.TempDir()
			files, err := WriteReport(dir, res)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if st, err := os.Stat(f); err != nil || st.Size() == 0 {
					t.Errorf("report file %s: %v", f, err)
				}
			}
			back, err := ReadResult(filepath.Join(dir, "result.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(back.Runs) != len(res.Runs) {
				t.Errorf("result.json has %d runs, want %d", len(back.Runs), len(res.Runs))
			}
		})
	}
}

func TestBuiltinWorkloadsParse(t *testing.T) {
	names := BuiltinWorkloads()
	if len(names) == 0 {
		t.Fatal("no built-in workloads")
	}
	for _, n := range names {
		if _, err := LoadWorkload(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for suite, ws := range Suites {
		for _, n := range ws {
			if _, err := LoadWorkload(n); err != nil {
				t.Errorf("suite %s: %s: %v", suite, n, err)
			}
		}
	}
}

func TestWorkloadErrorsSayWhatToChange(t *testing.T) {
	_, err := ParseWorkload([]byte("name: x\nkind: fast\nreplication: 2\nrecord_size: 4\n"))
	if err == nil {
		t.Fatal("a bad workload was accepted")
	}
	for _, want := range []string{"use produce, latency, consume or idle", "replication 2", "record_size 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := ParseWorkload([]byte("name: x\nunknown_field: 1\n")); err == nil {
		t.Error("an unknown field was accepted")
	}
}
