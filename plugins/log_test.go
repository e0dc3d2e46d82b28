package plugins

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestLogSinkRateAndTruncation(t *testing.T) {
	rec := newLogRecorder()
	s := newLogSink(zerolog.New(rec), 10)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }

	for range 25 {
		s.emit(LogInfo, "eddy.log", []byte("hello"))
	}
	require.Len(t, rec.find("hello"), 10, "a burst of 10 lines, then nothing")

	now = now.Add(time.Second)
	s.emit(LogInfo, "eddy.log", []byte("later"))
	require.Len(t, rec.find("later"), 1)
	require.Contains(t, rec.find("later")[0], `"dropped_before":15`)

	now = now.Add(time.Second)
	s.emit(LogInfo, "eddy.log", []byte(strings.Repeat("x", 2000)))
	long := rec.find("xxxx")
	require.Len(t, long, 1)
	require.Contains(t, long[0], `"truncated":true`)
	require.Contains(t, long[0], `"message":"`+strings.Repeat("x", maxLogBytes)+`"`)

	s.emit(99, "eddy.log", []byte("loud"))
	s.emit(-7, "eddy.log", []byte("quiet"))
	s.emit(LogWarn, "eddy.log", []byte("bad \xff utf8"))
	require.Contains(t, rec.find("loud")[0], `"level":"error"`, "a guest cannot log at fatal or panic")
	require.Contains(t, rec.find("quiet")[0], `"level":"debug"`)
	require.Contains(t, rec.find("bad ")[0], `"level":"warn"`)
	require.Contains(t, rec.find("bad ")[0], "\uFFFD")
}

func TestLogSinkWriterSplitsLines(t *testing.T) {
	rec := newLogRecorder()
	s := newLogSink(zerolog.New(rec), 100)
	w := s.writer("stderr", LogWarn)
	n, err := w.Write([]byte("one\ntwo\n\nthree"))
	require.NoError(t, err)
	require.Equal(t, 14, n)
	for _, l := range []string{"one", "two", "three"} {
		got := rec.find(`"message":"` + l + `"`)
		require.Len(t, got, 1, l)
		require.Contains(t, got[0], `"stream":"stderr"`)
		require.Contains(t, got[0], `"level":"warn"`)
	}
}

// TestGuestLogIsRateLimited: one plugin's instances share one budget;
// another plugin has its own.
func TestGuestLogIsRateLimited(t *testing.T) {
	h, rec := newTestHost(t, func(c *Config) {
		c.Limits.LogLinesPerSec = 3
		c.Limits.MaxInstances = 6
	})
	ctx := context.Background()
	p := load(t, h, "reject_empty", nil) // eddy_init logs "configured" per instance
	var ins []*instance
	for range 6 {
		in, err := p.pool.get(ctx)
		require.NoError(t, err)
		ins = append(ins, in)
	}
	for _, in := range ins {
		p.pool.put(in)
	}
	require.Len(t, rec.find(`"message":"configured"`), 3, "6 instances logged, 3 lines allowed")

	q := load(t, h, "reject_empty", map[string]string{"other": "config"})
	require.Len(t, rec.find(`"message":"configured"`), 4, "another plugin has its own budget")
	require.Contains(t, rec.find(`"message":"configured"`)[3], `"plugin":"`+q.ID()[:12]+`"`)
}
