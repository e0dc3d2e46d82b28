// Package device is the schema of a device configuration: what is flashed
// onto an edge box (firmware-config/README.md). A device config wraps a
// node config (appliance/nodecfg, the `node:` section, unchanged) with what
// only an appliance needs: the network, the data partition, the kernel
// modules to load and the update settings.
//
// It owns parsing, defaults and validation (every error names the field at
// fault, as node.listen.kafka or network.address) and the editor schema's
// contract (firmware-config/schema.json, kept in sync by a test). It does
// not build images (appliance/image) or apply anything to a running system
// (appliance/boot). It imports only nodecfg.
package device
