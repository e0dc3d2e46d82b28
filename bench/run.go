package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// Options steer a benchmark run.
type Options struct {
	// Targets to run, in this order within each round. Empty: the
	// workload's, or DefaultTargets.
	Targets []string
	// DataDir holds the brokers' data, a fresh directory per run. It must
	// be on the disk being measured (not tmpfs). Empty: a temporary
	// directory under the system's.
	DataDir string
	// Progress, when set, receives a live status line about once a second
	// and a line per finished run.
	Progress func(line string, final bool)
	// Limits, when set, is copied into the result.
	Limits *Limits
	// BehindLink says this process runs in the client namespace of the
	// workload's lossy link (see Link); eddy targets then run the broker as
	// EddyBinary in ServerNS.
	BehindLink bool
	ServerNS   string
	EddyBinary string
}

// RunWorkload runs w against every target, alternating targets run by run
// (A B A B …) so machine noise hits them alike, and summarises.
func RunWorkload(ctx context.Context, w Workload, opts Options) (*Result, error) {
	names := opts.Targets
	if len(names) == 0 {
		names = w.Targets
	}
	if len(names) == 0 {
		names = DefaultTargets
	}
	var ts []Target
	for _, n := range names {
		t, err := LookupTarget(n)
		if err != nil {
			return nil, err
		}
		if opts.BehindLink {
			et, ok := t.(eddyTarget)
			if !ok {
				return nil, fmt.Errorf("target %s: a workload with a link compares eddy's transports; only eddy targets run behind it", n)
			}
			t = linkedEddyTarget{eddyTarget: et, exe: opts.EddyBinary, serverNS: opts.ServerNS}
		}
		ts = append(ts, t)
	}
	if w.Link != nil && !opts.BehindLink {
		return nil, errors.New("a workload with a link runs through `eddy bench run` as root, which puts it in a network namespace with netem; see docs/benchmarks.md")
	}
	base := opts.DataDir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	res := &Result{Version: ResultVersion, Workload: w, Machine: DescribeMachine(), Limits: opts.Limits, Started: time.Now().UTC(), Targets: names}
	for i := range w.Runs {
		for _, t := range ts {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			run := runOnce(ctx, w, t, i, base, opts.Progress)
			res.Runs = append(res.Runs, run)
			if opts.Progress != nil {
				opts.Progress(runLine(w, run), true)
			}
		}
	}
	Summarize(res)
	return res, nil
}

func runLine(w Workload, r Run) string {
	if r.Error != "" {
		return fmt.Sprintf("%-10s run %d: FAILED: %s", r.Target, r.Index+1, r.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s run %d:", r.Target, r.Index+1)
	for _, m := range []string{MetricRecordsPerSec, MetricMBPerSec, MetricConsumeRecsPerS, MetricP50Millis, MetricP99Millis, MetricCPUMicrosPerRec, MetricPeakRSSMiB, MetricIdleCPUPercent} {
		if v, ok := r.Metrics[m]; ok {
			fmt.Fprintf(&b, " %s=%s", m, formatFloat(v))
		}
	}
	if r.Rate > 0 {
		fmt.Fprintf(&b, " (at %s rec/s)", formatFloat(r.Rate))
	}
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// runOnce starts t fresh, runs the workload and stops it.
func runOnce(ctx context.Context, w Workload, t Target, index int, base string, progress func(string, bool)) Run {
	run := Run{Target: t.Name(), Index: index, Started: time.Now().UTC(), Metrics: map[string]float64{}}
	dir, err := os.MkdirTemp(base, "eddy-bench-"+t.Name()+"-")
	if err != nil {
		run.Error = err.Error()
		return run
	}
	defer os.RemoveAll(dir)
	runtime.GC()
	debug.FreeOSMemory()
	rss := startRSSSampler()
	defer rss.stop()

	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	inst, err := t.Start(sctx, w, dir)
	cancel()
	if err != nil {
		run.Error = err.Error()
		return run
	}
	defer inst.Close()
	r := &runner{w: w, inst: inst, run: &run, progress: progress, label: fmt.Sprintf("%s %d/%d", t.Name(), index+1, w.Runs)}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = inst.CreateTopic(cctx, "bench", w.Partitions, w.Replication)
	cancel()
	if err == nil {
		switch w.Kind {
		case KindProduce:
			err = r.produce(ctx)
		case KindLatency:
			err = r.latency(ctx)
		case KindConsume:
			err = r.consume(ctx)
		case KindIdle:
			err = r.idle(ctx)
		}
	}
	if err != nil {
		run.Error = err.Error()
	}
	run.Metrics[MetricPeakRSSMiB] = float64(rss.stop()) / (1 << 20)
	run.Metrics[MetricLoad1] = load1()
	return run
}

// runner runs one workload on one instance.
type runner struct {
	w        Workload
	inst     Instance
	run      *Run
	progress func(string, bool)
	label    string
	// measureFrom: records scheduled before it belong to calibration or
	// warmup, not to the measured phase.
	measureFrom time.Time
}

// header is the first 16 bytes of every value: the intended send time in
// Unix nanoseconds and a sequence number.
const header = 16

// phase counts one stretch of sending.
type phase struct {
	sent, acked, failed atomic.Int64
	consumed            atomic.Int64

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // µs from intended send time
	errs []string
}

func newPhase() *phase { return &phase{hist: hdrhistogram.New(1, 120_000_000, 3)} }

func (p *phase) observe(since time.Time, now time.Time) {
	us := now.Sub(since).Microseconds()
	if us < 1 {
		us = 1
	}
	p.mu.Lock()
	p.hist.RecordValue(us)
	p.mu.Unlock()
}

func (p *phase) fail(err error) {
	p.failed.Add(1)
	p.mu.Lock()
	if len(p.errs) < 5 {
		p.errs = append(p.errs, err.Error())
	}
	p.mu.Unlock()
}

// send runs the producers until ctx ends or, with limit > 0, until limit
// records are sent. rate > 0 paces them open loop; latency is observed
// from each record's intended time when ackLatency is set.
func (r *runner) send(ctx context.Context, ph *phase, rate float64, limit int64, ackLatency bool) error {
	w := r.w
	pctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	producers := make([]Producer, w.Producers)
	for i := range producers {
		p, err := r.inst.NewProducer(pctx, w, "bench")
		if err != nil {
			for _, q := range producers[:i] {
				q.Close()
			}
			return err
		}
		producers[i] = p
	}
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	payload := make([]byte, w.RecordSize)
	for i := range payload {
		payload[i] = byte(rand.IntN(256))
	}
	var seq, budget atomic.Int64
	budget.Store(limit)
	var wg sync.WaitGroup
	errs := make(chan error, len(producers))
	start := time.Now()
	for i, p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := newKeySource(w, uint64(i))
			window := make(chan struct{}, w.InFlight)
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(len(producers)) / rate)
			}
			for k := int64(0); ctx.Err() == nil; k++ {
				if limit > 0 && budget.Add(-1) < 0 {
					break
				}
				intended := time.Now()
				if interval > 0 {
					// Open loop: the schedule does not wait for the broker;
					// a late send still counts its latency from its slot.
					intended = start.Add(time.Duration(k) * interval)
					if d := time.Until(intended); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
				v := make([]byte, w.RecordSize)
				n := seq.Add(1)
				if w.Values == "json" {
					fillJSONValue(v, intended, n)
				} else {
					copy(v[header:], payload[header:])
					binary.BigEndian.PutUint64(v, uint64(intended.UnixNano()))
					binary.BigEndian.PutUint64(v[8:], uint64(n))
				}
				ph.sent.Add(1)
				// Records in flight outlive the sending phase: they are
				// sent under pctx, not ctx.
				err := p.Send(pctx, keys.next(), v, func(err error) {
					<-window
					if err != nil {
						ph.fail(err)
						return
					}
					ph.acked.Add(1)
					if ackLatency {
						ph.observe(intended, time.Now())
					}
				})
				if err != nil {
					<-window
					ph.fail(err)
				}
			}
			fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.Flush(fctx); err != nil {
				errs <- fmt.Errorf("flush: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

// produce: warm up, then measure throughput, CPU and ack latency.
func (r *runner) produce(ctx context.Context) error {
	w := r.w
	if w.Records > 0 {
		// A fixed count: every record sent must be acknowledged.
		ph := newPhase()
		m := r.startMeasure(ph, "produce")
		err := r.send(ctx, ph, float64(w.Rate), w.Records, true)
		m.finish(r.run, ph)
		if err != nil {
			return err
		}
		return ph.err()
	}
	if w.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, w.Warmup.D())
		err := r.send(wctx, newPhase(), float64(w.Rate), 0, false)
		cancel()
		if err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
	}
	ph := newPhase()
	m := r.startMeasure(ph, "produce")
	mctx, cancel := context.WithTimeout(ctx, w.Duration.D())
	err := r.send(mctx, ph, float64(w.Rate), 0, true)
	cancel()
	m.finish(r.run, ph)
	if err != nil {
		return err
	}
	return ph.err()
}

func (p *phase) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		return fmt.Errorf("%d records failed, first: %s", p.failed.Load(), p.errs[0])
	}
	return nil
}

// latency: with consumers reading throughout, find the end-to-end
// maximum (unless Rate is given), then send at the fixed rate and observe
// end-to-end latency from each record's scheduled send time.
func (r *runner) latency(ctx context.Context) error {
	w := r.w
	ph := newPhase()
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var measuring atomic.Bool
	consumersDone, err := r.startConsumers(cctx, ph, func(v []byte, now time.Time) {
		if !measuring.Load() || len(v) < header {
			return
		}
		sent := sendTime(v)
		if sent.Before(r.measureFrom) {
			return // sent during calibration or warmup
		}
		ph.consumed.Add(1)
		ph.observe(sent, now)
	}, 0)
	if err != nil {
		return err
	}
	rate := float64(w.Rate)
	if rate == 0 {
		// Calibrate with the consumers reading, so the rate is a fraction
		// of what the broker sustains end to end, not of produce alone.
		cal := newPhase()
		d := max(w.Duration.D()/2, time.Second)
		calctx, cancel := context.WithTimeout(ctx, d)
		start := time.Now()
		err := r.send(calctx, cal, 0, 0, false)
		cancel()
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		rate = w.RateFraction * float64(cal.acked.Load()) / time.Since(start).Seconds()
		if rate < 1 {
			return errors.New("calibration acknowledged no records")
		}
	}
	r.run.Rate = rate
	if w.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, w.Warmup.D())
		err := r.send(wctx, newPhase(), rate, 0, false)
		cancel()
		if err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
	}
	r.measureFrom = time.Now()
	measuring.Store(true)
	m := r.startMeasure(ph, "latency")
	mctx, cancel := context.WithTimeout(ctx, w.Duration.D())
	err = r.send(mctx, ph, rate, 0, false)
	cancel()
	// Let the last records arrive before the consumers stop.
	deadline := time.Now().Add(10 * time.Second)
	for ph.consumed.Load() < ph.acked.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.finish(r.run, ph)
	stopConsumers()
	if cerr := <-consumersDone; err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return ph.err()
}

// startConsumers runs w.Consumers consumers calling fn for every record,
// until ctx ends or, with total > 0, until total records arrived. The
// channel gets their first error once all have stopped.
func (r *runner) startConsumers(ctx context.Context, ph *phase, fn func(v []byte, now time.Time), total int64) (<-chan error, error) {
	w := r.w
	n := max(w.Consumers, 1)
	cs := make([]Consumer, n)
	for i := range cs {
		c, err := r.inst.NewConsumer(ctx, w, "bench", i, n)
		if err != nil {
			for _, d := range cs[:i] {
				d.Close()
			}
			return nil, err
		}
		cs[i] = c
	}
	var got atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Run(ctx, func(v []byte) bool {
				fn(v, time.Now())
				if total > 0 && got.Add(1) >= total {
					cancel()
					return false
				}
				return true
			})
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		for _, c := range cs {
			c.Close()
		}
		close(errs)
		done <- errors.Join(collect(errs)...)
	}()
	return done, nil
}

// consume: fill the topic to TopicBytes, then read it from the start.
func (r *runner) consume(ctx context.Context) error {
	w := r.w
	records := int64(w.TopicBytes) / int64(w.RecordSize)
	if w.Records > 0 {
		records = w.Records
	}
	fill := newPhase()
	stopFill := r.live(fill, "fill")
	err := r.send(ctx, fill, 0, records, false)
	stopFill()
	if err != nil {
		return fmt.Errorf("fill the topic: %w", err)
	}
	if err := fill.err(); err != nil {
		return fmt.Errorf("fill the topic: %w", err)
	}
	r.run.Sent, r.run.Acked = fill.sent.Load(), fill.acked.Load()
	ph := newPhase()
	m := r.startMeasure(ph, "consume")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done, err := r.startConsumers(cctx, ph, func([]byte, time.Time) { ph.consumed.Add(1) }, records)
	if err != nil {
		return err
	}
	err = <-done
	cpu := m.finish(r.run, ph)
	r.run.Sent, r.run.Acked = fill.sent.Load(), fill.acked.Load()
	secs := r.run.Seconds
	r.run.Metrics[MetricConsumeRecsPerS] = float64(ph.consumed.Load()) / secs
	r.run.Metrics[MetricConsumeMBPerSec] = float64(ph.consumed.Load()) * float64(w.RecordSize) / secs / 1e6
	delete(r.run.Metrics, MetricRecordsPerSec)
	delete(r.run.Metrics, MetricMBPerSec)
	if c := ph.consumed.Load(); c > 0 {
		r.run.Metrics[MetricCPUMicrosPerRec] = cpu / float64(c) * 1e6
	}
	if err != nil {
		return err
	}
	if ph.consumed.Load() < records {
		return fmt.Errorf("read %d of %d records", ph.consumed.Load(), records)
	}
	return nil
}

// idle: with the partitions created and nothing sent, measure CPU and
// memory.
func (r *runner) idle(ctx context.Context) error {
	select {
	case <-time.After(2 * time.Second): // let elections and first ticks settle
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu0 := r.cpuSeconds()
	start := time.Now()
	select {
	case <-time.After(r.w.Duration.D()):
	case <-ctx.Done():
		return ctx.Err()
	}
	secs := time.Since(start).Seconds()
	r.run.Seconds = secs
	r.run.Metrics[MetricIdleCPUPercent] = 100 * (r.cpuSeconds() - cpu0) / secs
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.run.Metrics[MetricHeapMiB] = float64(ms.HeapInuse) / (1 << 20)
	return nil
}

// measure is one measured phase: wall time, CPU and a live line.
type measure struct {
	recordSize int
	start      time.Time
	cpu        func() float64
	cpu0       float64
	stop       func()
}

func (r *runner) startMeasure(ph *phase, what string) *measure {
	return &measure{recordSize: r.w.RecordSize, start: time.Now(), cpu: r.cpuSeconds, cpu0: r.cpuSeconds(), stop: r.live(ph, what)}
}

// cpuSeconds is the CPU time of every process of the run: this one and,
// when the broker runs apart, the broker's.
func (r *runner) cpuSeconds() float64 {
	total := cpuSeconds()
	if x, ok := r.inst.(interface{ extraCPUSeconds() float64 }); ok {
		total += x.extraCPUSeconds()
	}
	return total
}

// finish fills run from the phase and returns the CPU seconds it took.
func (m *measure) finish(run *Run, ph *phase) (cpuSecs float64) {
	m.stop()
	secs := time.Since(m.start).Seconds()
	cpu := m.cpu() - m.cpu0
	run.Seconds = secs
	run.Sent, run.Acked, run.Failed, run.Consumed = ph.sent.Load(), ph.acked.Load(), ph.failed.Load(), ph.consumed.Load()
	recs := float64(ph.acked.Load())
	run.Metrics[MetricRecordsPerSec] = recs / secs
	run.Metrics[MetricMBPerSec] = recs * float64(m.recordSize) / secs / 1e6
	if recs > 0 {
		run.Metrics[MetricCPUMicrosPerRec] = cpu / recs * 1e6
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if ph.hist.TotalCount() > 0 {
		h := ph.hist
		run.Metrics[MetricP50Millis] = float64(h.ValueAtQuantile(50)) / 1000
		run.Metrics[MetricP99Millis] = float64(h.ValueAtQuantile(99)) / 1000
		run.Metrics[MetricP999Millis] = float64(h.ValueAtQuantile(99.9)) / 1000
		run.Metrics[MetricMaxMillis] = float64(h.Max()) / 1000
		for _, q := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100} {
			run.Latency = append(run.Latency, CDFPoint{Percentile: q, Millis: float64(h.ValueAtQuantile(q)) / 1000})
		}
	}
	return cpu
}

// live reports progress about once a second until the returned func is
// called.
func (r *runner) live(ph *phase, what string) func() {
	if r.progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				acked, consumed := ph.acked.Load(), ph.consumed.Load()
				n := acked
				if what == "consume" {
					n = consumed
				}
				r.progress(fmt.Sprintf("%s %s %4.0fs  %9d rec/s  acked %d  consumed %d  failed %d",
					r.label, what, time.Since(start).Seconds(), n-last, acked, consumed, ph.failed.Load()), false)
				last = n
			}
		}
	}()
	return func() { close(stop); <-done }
}

// fillJSONValue fills v with a JSON object carrying the send time and the
// sequence number, padded to len(v): {"t":…,"seq":…,"pad":"xxx…"}.
func fillJSONValue(v []byte, sent time.Time, seq int64) {
	b := fmt.Appendf(v[:0], `{"t":%d,"seq":%d,"pad":"`, sent.UnixNano(), seq)
	for len(b) < len(v)-2 {
		b = append(b, 'a'+byte(len(b)%26))
	}
	b = append(b, '"', '}')
	copy(v, b)
}

// sendTime reads the send time from a value, binary or JSON.
func sendTime(v []byte) time.Time {
	if len(v) > 6 && string(v[:5]) == `{"t":` {
		end := bytes.IndexByte(v[5:], ',')
		if end > 0 {
			n, _ := strconv.ParseInt(string(v[5:5+end]), 10, 64)
			return time.Unix(0, n)
		}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

// keySource produces the workload's keys.
type keySource struct {
	kind  string
	space int
	rng   *rand.Rand
	zipf  *rand.Zipf
}

func newKeySource(w Workload, seed uint64) *keySource {
	k := &keySource{kind: w.Keys, space: w.KeySpace, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	if w.Keys == "zipf" {
		k.zipf = rand.NewZipf(k.rng, 1.1, 1, uint64(w.KeySpace-1))
	}
	return k
}

func (k *keySource) next() []byte {
	switch k.kind {
	case "uniform":
		return strconv.AppendInt(nil, int64(k.rng.IntN(k.space)), 10)
	case "zipf":
		return strconv.AppendUint(nil, k.zipf.Uint64(), 10)
	}
	return nil
}

func cpuSeconds() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// rssSampler records the process's peak resident memory during a run.
type rssSampler struct {
	peak     atomic.Int64
	stopOnce sync.Once
	done     chan struct{}
	quit     chan struct{}
}

func startRSSSampler() *rssSampler {
	s := &rssSampler{done: make(chan struct{}), quit: make(chan struct{})}
	s.peak.Store(currentRSS())
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				if v := currentRSS(); v > s.peak.Load() {
					s.peak.Store(v)
				}
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	s.stopOnce.Do(func() { close(s.quit); <-s.done })
	return s.peak.Load()
}

// currentRSS reads VmRSS from /proc/self/status, in bytes.
func currentRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func load1() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// DescribeMachine describes this machine for reports.
func DescribeMachine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.MemoryMiB = int64(si.Totalram) * int64(si.Unit) >> 20
	}
	var un unix.Utsname
	if unix.Uname(&un) == nil {
		m.Kernel = unix.ByteSliceToString(un.Release[:])
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		m.Eddy = bi.Main.Version
	}
	return m
}
