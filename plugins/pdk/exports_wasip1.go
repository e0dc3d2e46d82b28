//go:build wasip1

package pdk

import (
	"unsafe"

	"github.com/eddybroker/eddy/plugins/abi"
)

// The ABI's exports. Each is a thin wrapper over dispatch.go: it turns the
// returned slice into a guest pointer. Go's garbage collector does not move
// objects, and the buffers stay referenced by package state, so a pointer
// stays valid until the next call reuses or regrows the buffer.

//go:wasmexport eddy_abi_version
func eddyABIVersion() int32 { return abi.Version }

//go:wasmexport eddy_input_buffer
func eddyInputBuffer(size int32) uint32 {
	return addr(inputBuffer(size))
}

//go:wasmexport eddy_last_error
func eddyLastError() int64 {
	b := lastError()
	return abi.PackResult(addr(b), uint32(len(b)))
}

//go:wasmexport eddy_init
func eddyInit(cfgLen int32) int32 { return initPlugin(cfgLen) }

//go:wasmexport eddy_validate_batch
func eddyValidateBatch(n int32) int64 { return result(validateBatch(n)) }

//go:wasmexport eddy_partition_batch
func eddyPartitionBatch(n, partitions int32) int64 { return result(partitionBatch(n, partitions)) }

//go:wasmexport eddy_retain_records
func eddyRetainRecords(n int32) int64 { return result(retainRecords(n)) }

// addr is the guest address of b's first byte, 0 for an empty slice.
func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// result packs an output block, or passes a negative status through.
func result(out []byte, status int32) int64 {
	if status != abi.StatusOK {
		return int64(status)
	}
	return abi.PackResult(addr(out), uint32(len(out)))
}
