package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMeasureLimitsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("probes the machine for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	l, err := MeasureLimits(ctx, dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quick probes took %v:\n%s", time.Since(start).Round(time.Millisecond), l.Markdown())

	for name, v := range map[string]float64{
		"FsyncP50Micros":     l.FsyncP50Micros,
		"FsyncP99Micros":     l.FsyncP99Micros,
		"SerialFsyncsPerSec": l.SerialFsyncsPerSec,
		"SeqWriteMBPerSec":   l.SeqWriteMBPerSec,
		"TCPMBPerSec":        l.TCPMBPerSec,
		"QUICMBPerSec":       l.QUICMBPerSec,
		"QUICCPUSecPerGB":    l.QUICCPUSecPerGB,
		"MemcpyMBPerSec":     l.MemcpyMBPerSec,
	} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want positive and finite", name, v)
		}
	}
	if l.FsyncP99Micros < l.FsyncP50Micros {
		t.Errorf("fsync p99 %v µs < p50 %v µs", l.FsyncP99Micros, l.FsyncP50Micros)
	}
	if l.Dir != dir || !l.Quick {
		t.Errorf("Dir, Quick = %q, %v; want %q, true", l.Dir, l.Quick, dir)
	}

	md := l.Markdown()
	for _, row := range []string{
		"| probe | result |",
		"| one 4 KiB append + fdatasync |",
		"| sequential write, 1 MiB blocks + fsync |",
		"| TCP loopback, one connection |",
		"| QUIC loopback (quic-go, TLS 1.3), one stream |",
		"| memcpy, 64 MiB buffers |",
		dir,
	} {
		if !strings.Contains(md, row) {
			t.Errorf("Markdown() lacks %q:\n%s", row, md)
		}
	}

	// The probes removed their files and stopped their goroutines.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("probe dir holds %v (%v), want nothing", entries, err)
	}
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > goroutines; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines before, %d after:\n%s", goroutines, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMeasureLimitsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var lines []string
	_, err := MeasureLimits(ctx, t.TempDir(), true, func(s string) { lines = append(lines, s) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(lines) != 0 {
		t.Errorf("progress called with %q before any probe ran", lines)
	}
}
