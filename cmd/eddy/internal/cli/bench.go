//go:build bench

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure eddy against NATS JetStream on this machine",
		Long: `Run declarative workloads against eddy (over QUIC and TCP) and NATS JetStream,
each started fresh for every run, alternating targets run by run, and report
min/median/max and eddy/NATS ratios with JSON, markdown and PNG charts.

  eddy bench run --suite quick --out bench/results/quick
  eddy bench run --workload produce-r1 --targets eddy-quic,nats
  eddy bench compare old/result.json new/result.json
  eddy bench limits
  eddy bench list`,
	}
	cmd.AddCommand(newBenchRunCmd(), newBenchCompareCmd(), newBenchReportCmd(), newBenchLimitsCmd(), newBenchListCmd(), newBenchBehindLinkCmd())
	return cmd
}

func newBenchRunCmd() *cobra.Command {
	var (
		workloads []string
		suite     string
		targets   []string
		out       string
		dataDir   string
		runs      int
		duration  time.Duration
		noLimits  bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run workloads (built-in names or YAML files) and write reports",
		Long: `Run one or more workloads and write, per workload, result.json, summary.md and
PNG charts under --out/<workload>/, and for several workloads a combined
--out/summary.md. The summary is printed at the end.

Targets: eddy-quic, eddy-tcp (eddy in this process, as 'eddy serve' runs it),
nats (JetStream with SyncAlways: fsync before ack, like eddy) and nats-async
(JetStream's default background fsync: not durable at ack; labelled so).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := workloads
			if suite != "" {
				s, ok := bench.Suites[suite]
				if !ok {
					return fmt.Errorf("unknown suite %q: use standard or quick", suite)
				}
				names = append(names, s...)
			}
			if len(names) == 0 {
				return errors.New("name a --workload (see `eddy bench list`) or a --suite")
			}
			var ws []bench.Workload
			for _, n := range names {
				w, err := bench.LoadWorkload(n)
				if err != nil {
					return err
				}
				if runs > 0 {
					w.Runs = runs
				}
				if duration > 0 {
					w.Duration = bench.Duration(duration)
				}
				ws = append(ws, w)
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), ws, targets, out, dataDir, !noLimits)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&workloads, "workload", nil, "workload: a built-in name or a YAML file (repeatable)")
	f.StringVar(&suite, "suite", "", "a set of built-in workloads: standard or quick")
	f.StringSliceVar(&targets, "targets", nil, "targets to compare (default: the workload's, else eddy-quic,eddy-tcp,nats)")
	f.StringVar(&out, "out", "bench/results/latest", "directory for the reports")
	f.StringVar(&dataDir, "data", "", "where brokers keep their data during runs; must be on the disk to measure, not tmpfs (default: under --out)")
	f.IntVar(&runs, "runs", 0, "runs per target (default: the workload's, at least 3 for min/median/max)")
	f.DurationVar(&duration, "duration", 0, "override the measured phase of every workload")
	f.BoolVar(&noLimits, "no-limits", false, "skip the machine-limits probe")
	return cmd
}

func runBench(ctx context.Context, stdout, stderr io.Writer, ws []bench.Workload, targets []string, out, dataDir string, limits bool) error {
	if dataDir == "" {
		dataDir = filepath.Join(out, ".data")
	}
	defer os.RemoveAll(filepath.Join(out, ".data"))
	live := newLiveLine(stderr)
	var lim *bench.Limits
	if limits {
		fmt.Fprintln(stderr, "probing the machine's limits (fsync, disk, loopback TCP and QUIC, memcpy)...")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return err
		}
		l, err := bench.MeasureLimits(ctx, dataDir, true, func(s string) { live.show(s, false) })
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		live.show("", true)
		lim = &l
	}
	var results []*bench.Result
	for _, w := range ws {
		fmt.Fprintf(stderr, "== %s (%s): %s\n", w.Name, w.Kind, w.Description)
		var res *bench.Result
		var err error
		if w.Link != nil && os.Geteuid() != 0 {
			fmt.Fprintf(stderr, "skipping %s: a lossy link needs root (network namespaces and TUN devices); run it with sudo\n", w.Name)
			continue
		}
		if w.Link != nil {
			res, err = runLossy(ctx, w, targets, dataDir, stderr)
		} else {
			res, err = bench.RunWorkload(ctx, w, bench.Options{Targets: targets, DataDir: dataDir, Limits: lim, Progress: live.show})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", w.Name, err)
		}
		res.Limits = lim
		files, err := bench.WriteReport(filepath.Join(out, w.Name), res)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(files, ", "))
		results = append(results, res)
	}
	var md string
	if len(results) == 1 {
		md = bench.SummaryMarkdown(results[0])
	} else {
		md = bench.SummaryMarkdownAll(results)
	}
	if err := os.WriteFile(filepath.Join(out, "summary.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout, md)
	return nil
}

// liveLine rewrites one status line on a terminal; elsewhere it prints
// a line every few seconds.
type liveLine struct {
	w        io.Writer
	terminal bool
	last     time.Time
	width    int
}

func newLiveLine(w io.Writer) *liveLine {
	l := &liveLine{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			l.terminal = true
		}
	}
	return l
}

func (l *liveLine) show(s string, final bool) {
	if l.terminal {
		pad := ""
		if n := l.width - len(s); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		if final {
			if s != "" {
				fmt.Fprintf(l.w, "\r%s%s\n", s, pad)
			} else if l.width > 0 {
				fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
			}
			l.width = 0
			return
		}
		fmt.Fprintf(l.w, "\r%s%s", s, pad)
		l.width = len(s)
		return
	}
	if s == "" {
		return
	}
	if final || time.Since(l.last) >= 5*time.Second {
		fmt.Fprintln(l.w, s)
		l.last = time.Now()
	}
}

func newBenchCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare BASELINE.json CANDIDATE.json",
		Short: "Print the differences between two results of a workload (to spot regressions)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := bench.ReadResult(args[0])
			if err != nil {
				return err
			}
			b, err := bench.ReadResult(args[1])
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), bench.Compare(a, b))
			return nil
		},
	}
}

func newBenchReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RESULT.json...",
		Short: "Rebuild the reports of saved results (each next to its JSON) and one summary of them all",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var results []*bench.Result
			for _, file := range args {
				r, err := bench.ReadResult(file)
				if err != nil {
					return err
				}
				bench.Summarize(r)
				if _, err := bench.WriteReport(filepath.Dir(file), r); err != nil {
					return err
				}
				results = append(results, r)
			}
			md := bench.SummaryMarkdownAll(results)
			if len(results) == 1 {
				md = bench.SummaryMarkdown(results[0])
			}
			if out != "" {
				return os.WriteFile(out, []byte(md), 0o644)
			}
			fmt.Fprint(cmd.OutOrStdout(), md)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the combined summary to this file instead of stdout")
	return cmd
}

func newBenchLimitsCmd() *cobra.Command {
	var dir string
	var quick bool
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Measure the machine: fsync latency, disk bandwidth, loopback TCP and QUIC, memcpy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			probe, err := os.MkdirTemp(dir, "eddy-limits-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(probe)
			live := newLiveLine(cmd.ErrOrStderr())
			l, err := bench.MeasureLimits(cmd.Context(), probe, quick, func(s string) { live.show(s, false) })
			live.show("", true)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), l.Markdown())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory on the disk to probe (not tmpfs)")
	cmd.Flags().BoolVar(&quick, "quick", false, "about half a second per probe instead of a few seconds")
	return cmd
}

func newBenchListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List built-in workloads, suites and targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "workloads:")
			for _, n := range bench.BuiltinWorkloads() {
				w, err := bench.LoadWorkload(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "  %-18s %s\n", n, w.Description)
			}
			fmt.Fprintln(out, "suites:")
			for _, s := range []string{"quick", "standard"} {
				fmt.Fprintf(out, "  %-18s %s\n", s, strings.Join(bench.Suites[s], ", "))
			}
			fmt.Fprintln(out, "targets:")
			for _, n := range bench.TargetNames() {
				t, _ := bench.LookupTarget(n)
				fmt.Fprintf(out, "  %-18s %s\n", n, t.Describe())
			}
			return nil
		},
	}
}

// runLossy runs w in a child eddy inside the client namespace of a lossy
// link; the child starts each broker as `eddy serve` in the server
// namespace, so every packet between clients and broker crosses the link.
func runLossy(ctx context.Context, w bench.Workload, targets []string, dataDir string, stderr io.Writer) (*bench.Result, error) {
	link, err := bench.StartLink(ctx, *w.Link)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	specFile := filepath.Join(dataDir, "link-workload.json")
	resultFile := filepath.Join(dataDir, "link-result.json")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"netns", "exec", link.ClientNS, self, "bench", "behind-link",
		"--spec", specFile, "--result", resultFile, "--data", dataDir, "--server-ns", link.ServerNS}
	if len(targets) > 0 {
		args = append(args, "--targets", strings.Join(targets, ","))
	}
	child := exec.CommandContext(ctx, "ip", args...)
	child.Stdout, child.Stderr = stderr, stderr
	if err := child.Run(); err != nil {
		return nil, fmt.Errorf("the run behind the link failed: %w", err)
	}
	passed, dropped := link.Stats()
	fmt.Fprintf(stderr, "link: %d packets crossed, %d dropped (%.2f%%)\n", passed, dropped, 100*float64(dropped)/float64(max(passed+dropped, 1)))
	return bench.ReadResult(resultFile)
}

// newBenchBehindLinkCmd is the child half of runLossy: it runs a workload
// in the namespace it was started in and writes the result.
func newBenchBehindLinkCmd() *cobra.Command {
	var spec, result, dataDir, serverNS string
	var targets []string
	cmd := &cobra.Command{
		Use:    "behind-link",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(spec)
			if err != nil {
				return err
			}
			var w bench.Workload
			if err := json.Unmarshal(data, &w); err != nil {
				return err
			}
			live := newLiveLine(cmd.ErrOrStderr())
			self, err := os.Executable()
			if err != nil {
				return err
			}
			res, err := bench.RunWorkload(cmd.Context(), w, bench.Options{Targets: targets, DataDir: dataDir, Progress: live.show,
				BehindLink: true, ServerNS: serverNS, EddyBinary: self})
			if err != nil {
				return err
			}
			out, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(result, out, 0o644)
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "workload JSON")
	cmd.Flags().StringVar(&result, "result", "", "where to write the result JSON")
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory")
	cmd.Flags().StringSliceVar(&targets, "targets", nil, "targets")
	cmd.Flags().StringVar(&serverNS, "server-ns", "", "network namespace the brokers run in")
	return cmd
}
