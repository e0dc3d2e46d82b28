// Package hostcall lets pdktest make the calls an eddy host makes into the
// guest kit, natively and without widening pdk's API. pdk fills in Guest
// when it is initialised; nothing else writes it.
package hostcall

// Guest is the kit's dispatch, one function per export. Each mirrors its
// export: sizes and lengths as the host passes them, the output block (valid
// until the next call) and a status from package abi.
var Guest struct {
	InputBuffer func(size int32) []byte
	LastError   func() []byte
	Init        func(cfgLen int32) int32
	Validate    func(n int32) ([]byte, int32)
	Partition   func(n, partitions int32) ([]byte, int32)
	Retain      func(n int32) ([]byte, int32)
}

// LogSink, when set, receives pdk.Log calls in native builds (in wasm they
// go to the host's eddy.log import). Callers serialise access.
var LogSink func(level int32, msg string)
