//go:build !unix

package status

import "errors"

func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free disk space is not available on this platform")
}
