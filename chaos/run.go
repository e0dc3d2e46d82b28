package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/eddybroker/eddy/appliance/peers"
)

// Config is one chaos run.
type Config struct {
	Eddy      string        // the eddy binary to run
	Dir       string        // data directories, configs and node logs
	Duration  time.Duration // the whole schedule, warm-up to recovery
	Faults    []string      // fault kinds to cycle through; nil means AllFaults
	Seed      uint64        // picks faults and their targets; 0 means random
	Rate      int           // records per second per producer; 0 means 200
	Producers int           // 0 means 4 (half QUIC, half TCP)
	Consumers int           // group members; 0 means 2 (QUIC and TCP)
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Phase is one stage of the schedule with its progress check.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	Acks     int64         `json:"acks"`
	MinAcks  int64         `json:"min_acks"`
	Consumed int64         `json:"consumed"` // records the group members were given
}

// InjectedFault is one fault the nemesis injected.
type InjectedFault struct {
	Kind     string        `json:"kind"`
	What     string        `json:"what"`
	At       time.Duration `json:"at"` // since the start of the run
	Duration time.Duration `json:"duration"`
	Acks     int64         `json:"acks"` // acknowledged while it lasted
}

// Report is what a run did and found.
type Report struct {
	Seed       uint64         `json:"seed"`
	Duration   time.Duration  `json:"duration"`
	Sent       int            `json:"sent"`
	Acked      int            `json:"acked"`
	Failed     int            `json:"failed"` // produce errors: in the log or not
	ReadBack   int            `json:"read_back"`
	Consumed   int            `json:"consumed"`
	ConsumedBy map[string]int `json:"consumed_by"` // per group member, and per partition

	CommitsSeen  int             `json:"commits_seen"`
	Replicas     int             `json:"replicas_compared"`
	Phases       []Phase         `json:"phases"`
	Faults       []InjectedFault `json:"faults"`
	FaultCounts  map[string]int  `json:"fault_counts"`
	Anomalies    Anomalies       `json:"anomalies"`
	ProgressFail []string        `json:"progress_failures"`
}

// OK reports a run with no anomaly and progress in every phase.
func (r *Report) OK() bool { return r.Anomalies.Count() == 0 && len(r.ProgressFail) == 0 }

// Run starts a cluster, runs the schedule and checks the history. An
// error means the run could not be carried out; anomalies are in the
// report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Faults == nil {
		cfg.Faults = AllFaults
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Rate == 0 {
		cfg.Rate = 200
	}
	if cfg.Producers == 0 {
		cfg.Producers = 4
	}
	if cfg.Consumers == 0 {
		cfg.Consumers = 2
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	began := time.Now()
	rep := &Report{Seed: cfg.Seed, FaultCounts: map[string]int{}}
	logf("seed %d; starting 3 nodes in network namespaces (logs in %s)", cfg.Seed, cfg.Dir)
	c, err := startCluster(ctx, cfg.Eddy, cfg.Dir, 3)
	if err != nil {
		return nil, err
	}
	defer c.close()

	h := newHistory()
	w := &workload{c: c, h: h, rate: cfg.Rate, log: logf}
	setup, cancel := context.WithTimeout(ctx, 90*time.Second)
	// Nodes start listening a moment after they write the CA: retry.
	admin, err := w.dial(setup, "tcp", "chaos-setup")
	for err != nil && setup.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		admin, err = w.dial(setup, "tcp", "chaos-setup")
	}
	if err == nil {
		err = createTopic(setup, admin.Admin(), 6)
		admin.Close()
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("chaos: the cluster did not form: %w", err)
	}
	logf("topic %s ready after %s", topic, time.Since(began).Round(time.Millisecond))

	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for i := 0; i < cfg.Producers; i++ {
		w.wg.Add(1)
		go w.produce(load, i, transports[i%2], 60*time.Second)
	}
	for i := 0; i < cfg.Consumers; i++ {
		w.wg.Add(1)
		go w.consume(load, i, transports[i%2])
	}
	w.wg.Add(1)
	go w.monitorCommits(load)

	nem := &nemesis{c: c, w: w, rng: rand.New(rand.NewPCG(cfg.Seed, 1)), log: logf}
	d := cfg.Duration
	expect := func(span time.Duration, share float64) int64 {
		return int64(share * span.Seconds() * float64(cfg.Rate*cfg.Producers))
	}
	start := time.Now()
	phase := func(name string, span time.Duration, minAcks int64, body func(context.Context) error) error {
		logf("phase %s (%s)", name, span.Round(time.Second))
		before, consumedBefore := h.ackCount.Load(), h.readCount.Load()
		pctx, cancel := context.WithTimeout(ctx, span)
		defer cancel()
		err := body(pctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p := Phase{Name: name, Duration: span, Acks: h.ackCount.Load() - before, MinAcks: minAcks, Consumed: h.readCount.Load() - consumedBefore}
		rep.Phases = append(rep.Phases, p)
		logf("phase %s: %d acknowledged (minimum %d), %d consumed", name, p.Acks, minAcks, p.Consumed)
		if p.Acks < minAcks {
			rep.ProgressFail = append(rep.ProgressFail, fmt.Sprintf("phase %s: %d records acknowledged, fewer than the minimum %d", name, p.Acks, minAcks))
		}
		// The group must keep consuming too, not only the producers
		// producing; at least half the producers' minimum.
		if p.Consumed < minAcks/2 {
			rep.ProgressFail = append(rep.ProgressFail, fmt.Sprintf("phase %s: the group consumed %d records, fewer than the minimum %d", name, p.Consumed, minAcks/2))
		}
		return nil
	}
	wait := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	faultFor := min(max(d/60, 4*time.Second), 15*time.Second)
	gap := faultFor * 6 / 10
	steps := []struct {
		name string
		span time.Duration
		min  int64
		body func(context.Context) error
	}{
		{"warm-up", d / 10, expect(d/10, 0.1), wait},
		{"steady", d / 10, expect(d/10, 0.25), wait},
		{"faults", d * 6 / 10, 1, func(ctx context.Context) error {
			return runFaults(ctx, nem, cfg.Faults, faultFor, gap, start, rep, h)
		}},
		{"heal", d / 20, 1, func(ctx context.Context) error {
			if err := nem.healAll(); err != nil {
				return err
			}
			return wait(ctx)
		}},
		{"recovery", d * 3 / 20, expect(d*3/20, 0.25), wait},
	}
	for _, s := range steps {
		if err := phase(s.name, s.span, s.min, s.body); err != nil {
			return nil, err
		}
	}

	logf("stopping the workload; producers drain for up to 60s")
	stopLoad()
	w.wg.Wait()
	for _, err := range w.errs {
		rep.ProgressFail = append(rep.ProgressFail, "client: "+err.Error())
	}
	readCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	final, err := w.finalRead(readCtx)
	if err != nil {
		return nil, err
	}
	if err := waitReplicasEqual(readCtx, c); err != nil {
		logf("replicas did not converge: %v", err)
	}
	for _, nd := range c.nodes {
		if err := c.stop(ctx, nd); err != nil {
			logf("stop node %d: %v", nd.id, err)
		}
	}
	digests, err := replicaDigests(c)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rep.Anomalies = check(h, final, digests, len(c.nodes))
	rep.Anomalies.Crashes = c.crashes()
	rep.Sent, rep.Acked, rep.Failed = len(h.sent), len(h.acks), len(h.failed)
	rep.Consumed, rep.CommitsSeen = len(h.reads), len(h.commits)
	rep.ConsumedBy = map[string]int{}
	for _, r := range h.reads {
		rep.ConsumedBy[r.consumer]++
		rep.ConsumedBy[fmt.Sprintf("partition %d", r.partition)]++
	}
	for _, recs := range final {
		rep.ReadBack += len(recs)
	}
	for _, ds := range digests {
		rep.Replicas += len(ds)
	}
	rep.Duration = time.Since(began)
	return rep, nil
}

// runFaults cycles through the fault kinds in a random order until ctx
// ends and every kind has run at least once.
func runFaults(ctx context.Context, nem *nemesis, kinds []string, faultFor, gap time.Duration, start time.Time, rep *Report, h *history) error {
	if len(kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	seen := map[string]bool{}
	for {
		order := append([]string(nil), kinds...)
		nem.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, kind := range order {
			if ctx.Err() != nil && len(seen) == len(kinds) {
				return nil
			}
			// Every kind runs at least once, even past the phase's end.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			before := h.ackCount.Load()
			at := time.Since(start)
			heal, what, err := nem.inject(fctx, kind)
			if err != nil {
				cancel()
				return err
			}
			nem.log("fault %s: %s", kind, what)
			time.Sleep(faultFor)
			err = heal(fctx)
			cancel()
			if err != nil {
				return err
			}
			seen[kind] = true
			rep.FaultCounts[kind]++
			rep.Faults = append(rep.Faults, InjectedFault{Kind: kind, What: what, At: at, Duration: faultFor, Acks: h.ackCount.Load() - before})
			time.Sleep(gap)
		}
	}
}

// waitReplicasEqual waits until every replica of every partition of the
// test topic reports the same end offset on the admin API.
func waitReplicasEqual(ctx context.Context, c *cluster) error {
	var last string
	for {
		ends := map[int32]map[int64]bool{}
		reached := 0
		for _, nd := range c.nodes {
			var rep peers.Report
			if err := getJSON(ctx, fmt.Sprintf("http://%s:%d%s", nd.addr, adminPort, peers.ReplicasPath), &rep); err != nil {
				last = err.Error()
				continue
			}
			reached++
			for _, r := range rep.Replicas {
				if r.Topic == topic {
					if ends[r.Partition] == nil {
						ends[r.Partition] = map[int64]bool{}
					}
					ends[r.Partition][r.EndOffset] = true
				}
			}
		}
		equal := reached == len(c.nodes)
		for p, set := range ends {
			if len(set) != 1 {
				equal = false
				last = fmt.Sprintf("partition %d replicas end at %v", p, set)
			}
		}
		if equal {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, url string, out any) error {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
