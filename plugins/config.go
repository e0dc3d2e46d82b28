package plugins

import (
	"fmt"
	"runtime"
	"time"

	"github.com/rs/zerolog"
)

// Limits bound what one plugin may cost the broker. The zero value of each
// field means its default.
type Limits struct {
	// MemoryBytes is the linear memory one instance may grow to, rounded up
	// to whole 64 KiB pages. Default 64 MiB (enough for a standard-Go
	// guest); at most 2 GiB, because a hook returns its output pointer in
	// the upper half of a non-negative i64.
	MemoryBytes uint64 `yaml:"memory_bytes"`
	// CallTimeout is the wall-clock budget of one call into the guest,
	// input buffer and error message included. Default 100ms.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// InitTimeout is the budget for creating an instance: instantiation,
	// _initialize and eddy_init. Default 1s.
	InitTimeout time.Duration `yaml:"init_timeout"`
	// MaxBatchRecords is the most records passed in one call; bigger
	// batches are split. Default 1000.
	MaxBatchRecords int `yaml:"max_batch_records"`
	// MaxOutputBytes caps the output block of one call. Default 1 MiB.
	MaxOutputBytes int `yaml:"max_output_bytes"`
	// MaxInstances is the number of instances a loaded plugin keeps, and
	// so the number of calls it runs at once. Default min(GOMAXPROCS, 4).
	MaxInstances int `yaml:"max_instances"`
	// LogLinesPerSec is the guest log rate (eddy.log, stdout and stderr
	// together), with a burst of as many lines. Default 10.
	LogLinesPerSec int `yaml:"log_lines_per_sec"`
	// FailuresBeforeFailed is the number of consecutive failures that mark
	// a plugin failed. Default 5.
	FailuresBeforeFailed int `yaml:"failures_before_failed"`
	// MaxModuleBytes is the largest module accepted. Default 16 MiB.
	MaxModuleBytes int `yaml:"max_module_bytes"`
}

const (
	pageSize = 64 << 10
	// maxMemoryBytes: output pointers travel in bits 32..62 of a
	// non-negative i64 (abi.PackResult), so a guest can address 2 GiB.
	maxMemoryBytes = 2 << 30
	// maxLogBytes is where a guest log line is cut.
	maxLogBytes = 512
	// maxReasonBytes is where a rejection reason is cut.
	maxReasonBytes = 1024
	// maxErrorBytes is where an eddy_last_error message is cut.
	maxErrorBytes = 1024
)

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = 64 << 20
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = 100 * time.Millisecond
	}
	if l.InitTimeout == 0 {
		l.InitTimeout = time.Second
	}
	if l.MaxBatchRecords == 0 {
		l.MaxBatchRecords = 1000
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = 1 << 20
	}
	if l.MaxInstances == 0 {
		l.MaxInstances = min(runtime.GOMAXPROCS(0), 4)
	}
	if l.LogLinesPerSec == 0 {
		l.LogLinesPerSec = 10
	}
	if l.FailuresBeforeFailed == 0 {
		l.FailuresBeforeFailed = 5
	}
	if l.MaxModuleBytes == 0 {
		l.MaxModuleBytes = 16 << 20
	}
	return l
}

// Validate names the first field that is out of range.
func (l Limits) Validate() error {
	switch {
	case l.MemoryBytes > maxMemoryBytes:
		return fmt.Errorf("plugins: memory_bytes is %d; at most 2 GiB (%d) can be addressed through the ABI", l.MemoryBytes, maxMemoryBytes)
	case l.CallTimeout < 0:
		return fmt.Errorf("plugins: call_timeout is %v; it must be positive", l.CallTimeout)
	case l.InitTimeout < 0:
		return fmt.Errorf("plugins: init_timeout is %v; it must be positive", l.InitTimeout)
	case l.MaxBatchRecords < 0:
		return fmt.Errorf("plugins: max_batch_records is %d; it must be positive", l.MaxBatchRecords)
	case l.MaxOutputBytes < 0 || l.MaxOutputBytes > maxMemoryBytes:
		return fmt.Errorf("plugins: max_output_bytes is %d; it must be positive and at most 2 GiB", l.MaxOutputBytes)
	case l.MaxInstances < 0:
		return fmt.Errorf("plugins: max_instances is %d; it must be positive", l.MaxInstances)
	case l.LogLinesPerSec < 0:
		return fmt.Errorf("plugins: log_lines_per_sec is %d; it must be positive", l.LogLinesPerSec)
	case l.FailuresBeforeFailed < 0:
		return fmt.Errorf("plugins: failures_before_failed is %d; it must be positive", l.FailuresBeforeFailed)
	case l.MaxModuleBytes < 0:
		return fmt.Errorf("plugins: max_module_bytes is %d; it must be positive", l.MaxModuleBytes)
	}
	return nil
}

// memoryPages is MemoryBytes in whole wasm pages.
func (l Limits) memoryPages() uint32 {
	return uint32((l.MemoryBytes + pageSize - 1) / pageSize)
}

// Config configures a Host.
type Config struct {
	// CacheDir keeps compiled modules on disk across restarts (wazero's
	// compilation cache). Empty: compile results live in memory only.
	CacheDir string `yaml:"cache_dir"`
	// Limits bound every plugin of the host.
	Limits Limits `yaml:"limits"`
	// Logger receives the host's own events and the guests' log lines,
	// each with a "plugin" field.
	Logger zerolog.Logger `yaml:"-"`

	// DisableCloseOnContextDone turns off wazero's termination checks.
	// UNSAFE: a guest that loops then runs forever, ignores CallTimeout and
	// blocks Go's stop-the-world, freezing the whole process. It exists
	// only so benchmarks can measure what the checks cost.
	DisableCloseOnContextDone bool `yaml:"-"`
}
