package status

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrLowDiskSpace is returned by DiskGuard.Admit while the data directory's
// file system has less free space than the reserve.
var ErrLowDiskSpace = errors.New("low disk space")

// diskCheckEvery bounds how stale a free-space figure may be: statfs is
// cheap, but Admit runs for every partition of every produce. Between two
// statfs calls, admitted writes are counted against the last figure.
const diskCheckEvery = 100 * time.Millisecond

// writeAmplification is how many bytes of disk a produced byte takes before
// Raft compacts: the Raft log entry and the partition segment.
const writeAmplification = 2

// DiskGuard keeps a node from filling its data disk. Running out of space
// inside Raft is fatal (Dragonboat stops the process when its log database
// or a state machine cannot write), so writes are refused before they are
// proposed, while free space is still above a reserve that covers what is
// already in flight plus Raft's own flushes and compactions. It recovers
// by itself: once space is freed, the next Admit passes.
type DiskGuard struct {
	dir     string
	reserve uint64
	log     zerolog.Logger
	statfs  func(dir string) (free, total uint64, err error)

	mu      sync.Mutex
	at      time.Time
	free    uint64
	total   uint64
	statErr error
	low     bool
	// admitted is what Admit let through since the last statfs, which
	// may not show it yet: at a few hundred MB/s a stale figure alone
	// would let tens of MB past the reserve.
	admitted uint64
}

// NewDiskGuard guards the file system holding dir with a reserve of
// reserve bytes.
func NewDiskGuard(dir string, reserve int64, log zerolog.Logger) *DiskGuard {
	return &DiskGuard{dir: dir, reserve: uint64(max(reserve, 0)), log: log, statfs: diskSpace}
}

// Admit decides on a write of n bytes (a produce's record batches): it
// returns nil, and counts the write, while the data disk keeps at least the
// reserve free after it, and otherwise an error wrapping ErrLowDiskSpace
// that says how much is free. A file system that cannot be inspected is
// not held against writes: the failure is logged and Admit passes.
func (g *DiskGuard) Admit(n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	free, err := g.refreshLocked()
	if err != nil {
		return nil
	}
	need := uint64(max(n, 0)) * writeAmplification
	if free >= g.reserve && free-g.reserve >= need {
		g.admitted += need
		return nil
	}
	// No setLow here: a write refused because it would cross the reserve
	// (or because of what was admitted since the last statfs) does not
	// mean the disk is below it, and logging so would flap with every
	// refresh. The caller reports the refusal; refreshLocked the state.
	return fmt.Errorf("%w: data disk has %d bytes (%s) free, below the reserve of %d bytes (%s, limits.min_free_disk_bytes); writes are refused until space is freed",
		ErrLowDiskSpace, free, mib(free), g.reserve, mib(g.reserve))
}

// Low reports whether the data disk is below its reserve.
func (g *DiskGuard) Low() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	free, err := g.refreshLocked()
	return err == nil && free < g.reserve
}

// Free returns the bytes available on the data disk and its size.
func (g *DiskGuard) Free() (free, total uint64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	free, err = g.refreshLocked()
	return free, g.total, err
}

// Reserve is the free space the guard keeps.
func (g *DiskGuard) Reserve() uint64 { return g.reserve }

// Register adds the guard's gauges to m.
func (g *DiskGuard) Register(m *Metrics) {
	m.RegisterGauge("data_disk_free_bytes", "Bytes available to eddy on the file system of its data directory.", func() float64 {
		free, _, _ := g.Free()
		return float64(free)
	})
	m.RegisterGauge("data_disk_reserve_bytes", "Free space below which produces fail with KAFKA_STORAGE_ERROR (limits.min_free_disk_bytes).", func() float64 {
		return float64(g.reserve)
	})
	m.RegisterGauge("data_disk_low", "1 while the data disk is below its free-space reserve and produces are refused.", func() float64 {
		if g.Low() {
			return 1
		}
		return 0
	})
}

// refreshLocked returns the free space net of the writes admitted since
// the last statfs, calling statfs again when that is older than
// diskCheckEvery. g.mu is held.
func (g *DiskGuard) refreshLocked() (uint64, error) {
	if now := time.Now(); now.Sub(g.at) >= diskCheckEvery {
		g.at = now
		free, total, err := g.statfs(g.dir)
		if err != nil {
			if g.statErr == nil {
				g.log.Warn().Err(err).Str("dir", g.dir).Msg("cannot read the data disk's free space; the free-space reserve is not enforced")
			}
			g.statErr = err
			return 0, err
		}
		g.statErr, g.free, g.total, g.admitted = nil, free, total, 0
		g.setLow(free < g.reserve, free)
	}
	if g.statErr != nil {
		return 0, g.statErr
	}
	return g.free - min(g.admitted, g.free), nil
}

// setLow records whether the disk is below its reserve and logs changes.
func (g *DiskGuard) setLow(low bool, free uint64) {
	switch {
	case low && !g.low:
		g.log.Warn().Uint64("free_bytes", free).Uint64("reserve_bytes", g.reserve).Str("dir", g.dir).
			Msg("data disk is below its free-space reserve (limits.min_free_disk_bytes): produces fail with KAFKA_STORAGE_ERROR until space is freed")
	case !low && g.low:
		g.log.Info().Uint64("free_bytes", free).Uint64("reserve_bytes", g.reserve).Str("dir", g.dir).
			Msg("data disk is above its free-space reserve again: produces accepted")
	}
	g.low = low
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
