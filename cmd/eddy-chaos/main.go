package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/eddybroker/eddy/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eddy-chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("eddy-chaos", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: eddy-chaos [flags]

Runs three eddy nodes, each in its own network namespace, under idempotent
producers (acks=all) and a consumer group over QUIC and TCP, injects
faults (%s), heals, reads everything back and reports lost, duplicated,
reordered or skipped records, committed offsets going backwards, records
nobody sent and replicas that differ. Needs root, iproute2 and /dev/net/tun.
Exits 1 when it finds an anomaly.

Flags:
`, strings.Join(chaos.AllFaults, ", "))
		fs.PrintDefaults()
	}
	eddy := fs.String("eddy", "bin/eddy", "the eddy binary to test")
	duration := fs.Duration("duration", 10*time.Minute, "the whole schedule: warm-up 10%, steady 10%, faults 60%, heal 5%, recovery 15%")
	dir := fs.String("dir", "", "where node configs, data and logs go (default: a new temporary directory, removed after a clean run)")
	faults := fs.String("faults", strings.Join(chaos.AllFaults, ","), "fault kinds to cycle through, or none")
	seed := fs.Uint64("seed", 0, "seed for fault order and targets (0: random; the report prints it)")
	rate := fs.Int("rate", 200, "records per second per producer")
	producers := fs.Int("producers", 4, "idempotent producers, alternating QUIC and TCP")
	consumers := fs.Int("consumers", 2, "consumer group members, alternating QUIC and TCP")
	report := fs.String("report", "", "also write the summary as markdown to this file")
	jsonOut := fs.String("json", "", "also write the full report as JSON to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	bin, err := filepath.Abs(*eddy)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no eddy binary at %s (make build): %w", bin, err)
	}
	keep := *dir != ""
	if !keep {
		if *dir, err = os.MkdirTemp("", "eddy-chaos-"); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	kinds := []string{} // none: a run without faults, to compare against
	if *faults != "none" {
		kinds = strings.Split(*faults, ",")
	}
	rep, err := chaos.Run(ctx, chaos.Config{
		Eddy: bin, Dir: *dir, Duration: *duration, Faults: kinds, Seed: *seed,
		Rate: *rate, Producers: *producers, Consumers: *consumers,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%7s  %s\n", time.Since(began).Round(time.Second), fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return fmt.Errorf("%w (node logs in %s)", err, *dir)
	}
	summary := markdown(rep)
	fmt.Print(summary)
	if *report != "" {
		if err := os.WriteFile(*report, []byte(summary), 0o644); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if !rep.OK() {
		return fmt.Errorf("%d anomalies, %d progress failures (node logs in %s)", rep.Anomalies.Count(), len(rep.ProgressFail), *dir)
	}
	if !keep {
		os.RemoveAll(*dir)
	}
	return nil
}

func markdown(r *chaos.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| run | %s, seed %d |\n", r.Duration.Round(time.Second), r.Seed)
	fmt.Fprintf(&b, "| records sent | %d |\n| acknowledged | %d |\n| produce errors (indeterminate) | %d |\n", r.Sent, r.Acked, r.Failed)
	fmt.Fprintf(&b, "| read back at the end | %d |\n| consumed by the group | %d |\n| committed offsets observed | %d |\n", r.ReadBack, r.Consumed, r.CommitsSeen)
	fmt.Fprintf(&b, "| replicas compared byte for byte | %d |\n", r.Replicas)
	kinds := make([]string, 0, len(r.FaultCounts))
	total := 0
	for k, n := range r.FaultCounts {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "| faults injected | %d (%s) |\n", total, strings.Join(kinds, ", "))
	fmt.Fprintf(&b, "| anomalies | %d |\n", r.Anomalies.Count())
	fmt.Fprintf(&b, "\n| phase | length | acknowledged | minimum | consumed by the group |\n|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", p.Name, p.Duration.Round(time.Second), p.Acks, p.MinAcks, p.Consumed)
	}
	if r.Anomalies.Count() > 0 || len(r.ProgressFail) > 0 {
		fmt.Fprintf(&b, "\n```\n%s%s\n```\n", r.Anomalies, strings.Join(r.ProgressFail, "\n"))
	}
	return b.String()
}
