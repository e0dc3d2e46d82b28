// Package boot is eddy's boot mode: what the eddy binary does when the
// kernel starts it as PID 1 from the image's initramfs (appliance/image).
// It mounts the kernel's file systems, loads the image's kernel modules in
// their dependency order, reads the device config (appliance/device) from
// the EFI partition, configures the network, mounts the data partition,
// then runs the broker (appliance.Node) and restarts it with backoff when
// it fails. It reaps orphaned processes, as PID 1 must, and on a power-off
// request (ACPI power button, SIGTERM, SIGPWR, Ctrl-Alt-Del) stops the
// broker, syncs and unmounts the data, and powers off.
//
// PID 1 must never exit (the kernel panics), so every failure is logged
// and retried, or ends in a power-off. Linux only.
package boot
