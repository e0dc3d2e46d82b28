package raftgroups

import (
	"fmt"
	"sync"
	"sync/atomic"

	dblogger "github.com/lni/dragonboat/v4/logger"
	"github.com/rs/zerolog"
)

// Dragonboat's logger factory is process-global and can be set only once,
// so every Host routes through this pointer; the newest Host's logger wins.
var (
	dragonboatLog     atomic.Pointer[zerolog.Logger]
	dragonboatLogOnce sync.Once
)

func routeDragonboatLogs(l zerolog.Logger) {
	l = l.With().Str("component", "dragonboat").Logger()
	dragonboatLog.Store(&l)
	dragonboatLogOnce.Do(func() {
		dblogger.SetLoggerFactory(func(pkg string) dblogger.ILogger { return &dragonboatLogger{pkg: pkg} })
	})
}

// dragonboatLogger adapts Dragonboat's printf logger to zerolog. Dragonboat
// reports routine events (elections, snapshots) at INFO; they are demoted
// to debug so a healthy node stays quiet.
type dragonboatLogger struct{ pkg string }

func (d *dragonboatLogger) log(level zerolog.Level, format string, args []any) {
	l := dragonboatLog.Load()
	if l == nil {
		return
	}
	l.WithLevel(level).Str("pkg", d.pkg).Msgf(format, args...)
}

func (d *dragonboatLogger) SetLevel(dblogger.LogLevel) {}
func (d *dragonboatLogger) Debugf(format string, args ...any) {
	d.log(zerolog.TraceLevel, format, args)
}
func (d *dragonboatLogger) Infof(format string, args ...any) { d.log(zerolog.DebugLevel, format, args) }

// Warningf: Dragonboat's raft package reports elections, and requests
// dropped during them, as warnings; they are routine, so they go to debug.
func (d *dragonboatLogger) Warningf(format string, args ...any) {
	level := zerolog.WarnLevel
	if d.pkg == "raft" || d.pkg == "config" {
		level = zerolog.DebugLevel
	}
	d.log(level, format, args)
}
func (d *dragonboatLogger) Errorf(format string, args ...any) {
	d.log(zerolog.ErrorLevel, format, args)
}

// Panicf must not return: Dragonboat uses it for broken invariants.
func (d *dragonboatLogger) Panicf(format string, args ...any) {
	d.log(zerolog.ErrorLevel, format, args)
	panic(fmt.Sprintf(format, args...))
}
