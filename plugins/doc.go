// Package plugins will host user WebAssembly modules (custom partitioners,
// schema validators, retention policies) with wazero. It is empty until the
// plugins work lands; see ../shared/plugin-abi.md for the proposed contract.
package plugins
