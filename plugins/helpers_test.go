package plugins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// testModule reads testdata/name.wasm (built from name.wat by build.sh).
func testModule(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(t, err, "run plugins/testdata/build.sh")
	return b
}

// logRecorder is a zerolog writer tests can search and wait on.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	wake  chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{wake: make(chan struct{})} }

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.lines = append(r.lines, string(p))
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	return len(p), nil
}

// find returns the log lines containing s.
func (r *logRecorder) find(s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// waitFor waits until a log line contains s.
func (r *logRecorder) waitFor(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		wake := r.wake
		r.mu.Unlock()
		if len(r.find(s)) > 0 {
			return
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no log line with %q within %v", s, d)
		}
	}
}

// newTestHost starts a host whose log goes to the returned recorder.
func newTestHost(t testing.TB, edit func(*Config)) (*Host, *logRecorder) {
	t.Helper()
	rec := newLogRecorder()
	cfg := Config{Logger: zerolog.New(rec)}
	if edit != nil {
		edit(&cfg)
	}
	h, err := NewHost(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close(context.Background())) })
	return h, rec
}

func load(t testing.TB, h *Host, name string, config map[string]string) *Plugin {
	t.Helper()
	p, err := h.Load(context.Background(), testModule(t, name), config)
	require.NoError(t, err)
	return p
}

// records makes n records with distinct keys and values of valueSize bytes.
func records(n, valueSize int) []abi.Record {
	value := bytes.Repeat([]byte{'v'}, valueSize)
	rs := make([]abi.Record, n)
	for i := range rs {
		rs[i] = abi.Record{
			OffsetDelta: int64(i),
			Timestamp:   1_700_000_000_000 + int64(i),
			Key:         []byte(fmt.Sprintf("key-%d", i)),
			Value:       value,
		}
	}
	return rs
}
