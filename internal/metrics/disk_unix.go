//go:build unix

package metrics

import "golang.org/x/sys/unix"

// diskSpace returns the bytes available to the daemon (not root's reserve)
// and the size of the file system that holds dir.
func diskSpace(dir string) (avail, size uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
