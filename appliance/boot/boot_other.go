//go:build !linux

package boot

// Main is the boot mode, which exists on Linux only.
func Main() { panic("eddy's boot mode runs on Linux only") }
