//go:build unix

package nas

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileIDs returns the device a file lives on and its owner and group.
func fileIDs(fi fs.FileInfo) (dev uint64, uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, false
	}
	// Dev is int32 on some systems and uint64 on Linux; only equality
	// and the Linux split into major:minor (for messages) matter here.
	return uint64(st.Dev), st.Uid, st.Gid, true
}

// devString renders a device number as major:minor, the way
// /proc/self/mountinfo shows it (Linux's encoding).
func devString(dev uint64) string {
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	return fmt.Sprintf("%d:%d", major, minor)
}
