//go:build unix

package nas

import "syscall"

// statfs returns the size of the file system holding path and the space
// available to unprivileged users on it.
func statfs(path string) (total, free int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	// The field types differ between systems; the products fit int64 for
	// any real file system.
	bsize := int64(st.Bsize)
	return int64(st.Blocks) * bsize, int64(st.Bavail) * bsize, nil
}
