//go:build unix

package files

import (
	"io/fs"
	"syscall"
)

// device returns the file system device an entry lives on.
func device(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true // Dev is int32 on some systems
}

// readable reports whether the runner could open path for reading, without
// opening it (access(2) with R_OK): a plan must not touch atimes or block
// on a FIFO.
func readable(path string) bool {
	const rOK = 4
	return syscall.Access(path, rOK) == nil
}
