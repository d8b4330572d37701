//go:build !unix

package metrics

import "errors"

func diskSpace(string) (avail, size uint64, err error) {
	return 0, 0, errors.New("the free space of a file system is only read on Unix")
}
