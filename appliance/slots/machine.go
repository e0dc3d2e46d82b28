package slots

import (
	"debug/pe"
	"runtime"
)

// peMachine is the PE machine of a kernel image this build can run.
var peMachine = map[string]uint16{
	"amd64": pe.IMAGE_FILE_MACHINE_AMD64,
	"arm64": pe.IMAGE_FILE_MACHINE_ARM64,
}[runtime.GOARCH]
