//go:build wasip1

package pdk

import "unsafe"

//go:wasmimport eddy log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

// Log sends msg to the host's plugin log at level. The host rate-limits and
// truncates plugin logs; do not log per record on a hot path.
func Log(level Level, msg string) {
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}
