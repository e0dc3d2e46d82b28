// Package plugins is eddy's host for user WebAssembly plugins: validators,
// partitioners and retention policies uploaded by operators and run inside
// the broker with wazero.
//
// It owns:
//   - refusing a module at upload ([Host.Inspect]): size, imports (only
//     wasi_snapshot_preview1 and eddy), the exports and their signatures,
//     the ABI version, and one real instantiation with the plugin's config;
//   - compiling once ([Host.Load]): in memory by sha256 and on disk through
//     wazero's compilation cache, so a restart does not pay the compile again;
//   - a small pool of warm instances per plugin, each initialised with the
//     plugin's config, and the call protocol of docs/plugins.md: input
//     buffer, hook, packed result, eddy_last_error;
//   - containment: a memory limit per instance, a time budget per call that
//     stops a looping guest (the runtime closes a module whose context is
//     done, so neither the caller nor Go's garbage collector waits on it),
//     bounds checks on every pointer and length a guest returns, an output
//     cap, a rate-limited and truncated guest log, and an instance that
//     trapped, exited, overran its budget or broke the ABI is thrown away,
//     never reused;
//   - failure accounting: consecutive failures mark a plugin failed, after
//     which its calls return [ErrFailed] until [Plugin.Reset].
//
// It does not own the byte layout (package abi, shared with the guest kit),
// what a topic does with a failed plugin (fail closed or open is the
// topic's choice), where modules are stored, or the admin API.
//
// A negative status from a hook is the plugin speaking, not failing: the
// call returns a [*StatusError], the instance is kept and the failure
// count is not touched. Everything else that goes wrong inside the guest
// is a failure.
package plugins
