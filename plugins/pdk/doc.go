// Package pdk is the guest kit for eddy plugins written in standard Go: it
// implements the plugin ABI (package abi, docs/plugins.md) so that a plugin
// is a main package that registers handlers in init and does nothing else.
//
//	package main
//
//	import "github.com/eddybroker/eddy/plugins/pdk"
//
//	func init() {
//		pdk.OnValidate(func(r pdk.Record) pdk.Verdict {
//			if len(r.Value) == 0 {
//				return pdk.Reject(1, "value: empty")
//			}
//			return pdk.Accept()
//		})
//	}
//
//	func main() {}
//
// Build it as a wasip1 reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugin.wasm .
//
// Importing pdk links every export of the ABI (eddy_abi_version,
// eddy_input_buffer, eddy_last_error, eddy_init, eddy_validate_batch,
// eddy_partition_batch, eddy_retain_records) whatever handlers the plugin
// registers; a hook whose handler is not registered returns
// abi.StatusNoHook (the host finds a module's kinds by calling each hook
// with an empty batch). The module exports "memory" and _initialize; the
// host must call _initialize, which starts the Go runtime and runs the
// plugin's init functions, before any other export (an export called
// earlier traps). The module imports eddy.log only if the plugin calls Log,
// and wasi_snapshot_preview1 functions for the Go runtime.
//
// # Contract for handlers
//
//   - Handlers are registered in init and called one at a time, never
//     concurrently: a module instance is single-threaded.
//   - A Record's Key, Value and Headers point into the guest's input
//     buffer and into slices the kit reuses for the next record. They are
//     valid only during the callback: copy what must outlive it.
//   - A panic in a handler fails the whole call with abi.StatusPanic; the
//     panic message becomes the call's last error. Fatal runtime errors
//     (out of memory, deadlock, concurrent map writes) cannot be recovered:
//     they end the instance, and the host replaces it.
//   - Handlers must not block: there is no scheduler between calls, so a
//     goroutine started by a handler runs only while a later call is in
//     progress, and waiting on one that never runs is a fatal deadlock.
//
// Handlers are tested natively with package pdktest, which drives the same
// dispatch code as the wasm exports.
package pdk
