//go:build unix

package status

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskSpace returns the bytes an unprivileged user may still write on the
// file system holding dir (blocks reserved for root do not count: eddy
// should not depend on running as root to have room) and its size.
func diskSpace(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
