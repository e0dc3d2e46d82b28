//go:build !wasip1

package pdk

import (
	"fmt"
	"os"

	"github.com/eddybroker/eddy/plugins/pdk/internal/hostcall"
)

// Log sends msg to the host's plugin log at level. The host rate-limits and
// truncates plugin logs; do not log per record on a hot path.
//
// In a native build (tests) it goes to pdktest's sink, or to standard error.
func Log(level Level, msg string) {
	if hostcall.LogSink != nil {
		hostcall.LogSink(int32(level), msg)
		return
	}
	fmt.Fprintf(os.Stderr, "plugin %s: %s\n", level, msg)
}
