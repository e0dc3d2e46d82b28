package plugins

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/tetratelabs/wazero/api"
)

// Guest log levels for eddy.log. They are zerolog's numbers; anything
// below is debug and anything above is error, so a guest can never reach
// fatal or panic.
const (
	LogDebug = int32(zerolog.DebugLevel)
	LogInfo  = int32(zerolog.InfoLevel)
	LogWarn  = int32(zerolog.WarnLevel)
	LogError = int32(zerolog.ErrorLevel)
)

// logSink is one plugin's guest log: every instance's eddy.log, stdout and
// stderr share its rate (a token bucket of perSec lines per second with a
// burst of perSec). Lines over the rate are counted and the count is
// reported on the next line that gets through.
type logSink struct {
	log    zerolog.Logger
	perSec float64
	now    func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

func newLogSink(log zerolog.Logger, perSec int) *logSink {
	return &logSink{log: log, perSec: float64(perSec), tokens: float64(perSec), now: time.Now}
}

// allow takes a token and returns the number of lines dropped since the
// last line allowed.
func (s *logSink) allow() (ok bool, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.last.IsZero() {
		s.tokens = min(s.perSec, s.tokens+now.Sub(s.last).Seconds()*s.perSec)
	}
	s.last = now
	if s.tokens < 1 {
		s.dropped++
		return false, 0
	}
	s.tokens--
	dropped, s.dropped = s.dropped, 0
	return true, dropped
}

// emit logs one guest line, cut to maxLogBytes.
func (s *logSink) emit(level int32, stream string, line []byte) {
	ok, dropped := s.allow()
	if !ok {
		return
	}
	lvl := zerolog.Level(min(max(level, LogDebug), LogError))
	ev := s.log.WithLevel(lvl).Str("stream", stream)
	if len(line) > maxLogBytes {
		line = line[:maxLogBytes]
		ev = ev.Bool("truncated", true)
	}
	if dropped > 0 {
		ev = ev.Int("dropped_before", dropped)
	}
	ev.Msg(strings.ToValidUTF8(string(line), "\uFFFD"))
}

// writer is a guest's stdout or stderr: each line is a log line.
func (s *logSink) writer(stream string, level int32) io.Writer {
	return &sinkWriter{s: s, stream: stream, level: level}
}

type sinkWriter struct {
	s      *logSink
	stream string
	level  int32
}

func (w *sinkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(line) > 0 {
			w.s.emit(w.level, w.stream, line)
		}
	}
	return n, nil
}

type sinkKey struct{}

// withSink makes eddy.log calls made under ctx go to s.
func withSink(ctx context.Context, s *logSink) context.Context {
	return context.WithValue(ctx, sinkKey{}, s)
}

// hostLog is the eddy.log(level i32, ptr i32, len i32) import. A message
// that is not inside the guest's memory is reported as such, not trusted.
func hostLog(ctx context.Context, m api.Module, stack []uint64) {
	s, _ := ctx.Value(sinkKey{}).(*logSink)
	if s == nil {
		return
	}
	level := api.DecodeI32(stack[0])
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	msg, ok := m.Memory().Read(ptr, min(n, maxLogBytes+1))
	if !ok {
		s.emit(LogWarn, "eddy.log", []byte("(the plugin logged a message outside its memory)"))
		return
	}
	s.emit(level, "eddy.log", msg)
}
