// Package crashdisk simulates what a crash leaves of a directory tree, for
// crash-consistency tests of partlog and the partition state machine.
//
// A SIGKILL loses nothing the process wrote (the page cache survives), so
// a copy of the tree taken at a crash point (Copy) is exactly what the next
// start sees. A power loss keeps only what was fsynced: Disk is told when
// the code under test fsynced a file or a directory, and Crash writes one
// state a power loss could leave: each file holds at least its fsynced
// bytes followed by any prefix of what was written after them (or, as on
// file systems that extend a file before writing its blocks, zeros or
// garbage in their place), and a name whose directory was not fsynced
// since it was created may be missing.
//
// It models files that only grow between fsyncs, which is how partlog and
// the checkpoint writer use them (shrinking and replacing are fsynced
// before they return); Crash reports an error when that does not hold,
// since it then cannot tell what a crash may leave.
//
// It does not import partlog and is for tests only.
package crashdisk
