package partlog

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// CrashPointEnv names the environment variable that arms a crash point for
// crash-consistency tests: "point:n" SIGKILLs the process the n-th time the
// write path passes the named point ("point" alone means n = 1, and the
// point "*" matches every point). It is read once, when the process
// starts; nothing a client sends can arm or reach it.
const CrashPointEnv = "EDDY_CRASHPOINT"

// crash is the armed crash point. armed is the only field the fast path
// reads, so an unarmed CrashPoint costs one atomic load.
var crash struct {
	armed  atomic.Bool
	point  string
	at     int64
	passes atomic.Int64
	hook   atomic.Pointer[func(point string)]
}

func init() {
	v := os.Getenv(CrashPointEnv)
	if v == "" {
		return
	}
	point, at, err := parseCrashPoint(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "eddy: ignoring %s=%q: %v\n", CrashPointEnv, v, err)
		return
	}
	crash.point, crash.at = point, at
	crash.armed.Store(true)
}

func parseCrashPoint(v string) (string, int64, error) {
	point, count, found := strings.Cut(v, ":")
	at := int64(1)
	if found {
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			return "", 0, fmt.Errorf("pass count %q: want a number of at least 1", count)
		}
		at = n
	}
	if point == "" {
		return "", 0, fmt.Errorf("no crash point named; want point[:n]")
	}
	return point, at, nil
}

// CrashPoint marks a window of the write path where a crash leaves files
// in an intermediate state that recovery must handle: between two writes
// that only together make a consistent state. The names are listed in
// docs/reliability.md ("Crash consistency"). Unarmed, it costs one atomic
// load.
func CrashPoint(point string) {
	if !crash.armed.Load() {
		return
	}
	crashPointSlow(point)
}

func crashPointSlow(point string) {
	if h := crash.hook.Load(); h != nil {
		(*h)(point)
		return
	}
	if crash.point != "*" && crash.point != point {
		return
	}
	n := crash.passes.Add(1)
	if n != crash.at {
		return
	}
	// Say where, so a test can tell a planned death from a real crash.
	fmt.Fprintf(os.Stderr, "eddy: crash point %s, pass %d: SIGKILL\n", point, n)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	for {
		time.Sleep(time.Hour) // SIGKILL is on its way
	}
}

// SetCrashHook makes every CrashPoint call f instead of killing the
// process, so an in-process test can copy the files at each point (what a
// SIGKILL there would leave). It is for tests only; restore undoes it. f
// runs on the goroutine passing the point, a Log's writer.
func SetCrashHook(f func(point string)) (restore func()) {
	crash.hook.Store(&f)
	crash.armed.Store(true)
	return func() {
		crash.hook.Store(nil)
		crash.armed.Store(crash.point != "")
	}
}
