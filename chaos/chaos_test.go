package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddybroker/eddy/chaos/netlab"
)

// TestChaosShort runs the whole schedule, every fault kind once, in about
// two minutes: the short version of `make chaos` that `make test` runs.
func TestChaosShort(t *testing.T) {
	if err := netlab.CheckPrerequisites(); err != nil {
		t.Skipf("chaos needs a network lab: %v", err)
	}
	if os.Getenv("EDDY_CHAOS") == "" {
		// Three nodes under faults for two minutes load both cores: run
		// alongside other packages' tests, it would make their timing
		// tests flaky, so make test runs it on its own (EDDY_CHAOS=1).
		t.Skip("set EDDY_CHAOS=1 to run the short chaos schedule (make test does, after the other tests)")
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("EDDY_CHAOS_KEEP") != "" {
			os.RemoveAll("/tmp/eddy-chaos-failed")
			if err := os.Rename(dir, "/tmp/eddy-chaos-failed"); err == nil {
				t.Logf("kept the run's configs, data and node logs in /tmp/eddy-chaos-failed")
			}
		}
	})
	bin := os.Getenv("EDDY_CHAOS_BIN") // a prebuilt eddy, else this tree's
	if bin == "" {
		bin = filepath.Join(dir, "eddy")
		build := exec.Command("go", "build", "-o", bin, "../cmd/eddy")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build eddy: %v\n%s", err, out)
		}
	}
	d := 100 * time.Second
	if s := os.Getenv("EDDY_CHAOS_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("EDDY_CHAOS_DURATION: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+6*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Eddy: bin, Dir: filepath.Join(dir, "run"), Duration: d, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d, acknowledged %d, failed %d, read back %d, consumed %d, committed offsets seen %d, replicas compared %d, faults %v",
		rep.Sent, rep.Acked, rep.Failed, rep.ReadBack, rep.Consumed, rep.CommitsSeen, rep.Replicas, rep.FaultCounts)
	for _, k := range AllFaults {
		if rep.FaultCounts[k] == 0 {
			t.Errorf("fault %s never ran", k)
		}
	}
	if rep.Acked == 0 || rep.ReadBack < rep.Acked {
		t.Errorf("acknowledged %d, read back %d", rep.Acked, rep.ReadBack)
	}
	if !rep.OK() {
		t.Errorf("anomalies:\n%s\nprogress: %v\n(set EDDY_CHAOS_KEEP=1 to keep the node logs)", rep.Anomalies, rep.ProgressFail)
	}
}
