// Package slots owns the appliance's A/B boot slots on the EFI system
// partition: which slot is running and whether it is on trial, installing
// a new unified kernel image into the other slot and booting it once
// (systemd-boot's LoaderEntryOneShot), and marking a slot good by making
// it the boot loader's default. A slot that fails its one trial boot is
// never the default, so the next boot is the old slot's.
package slots
