//go:build unix

package mirror

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// OwnerOf returns the uid and gid of an entry (-1 when unknown).
func OwnerOf(fi fs.FileInfo) (int, int) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1
	}
	return int(st.Uid), int(st.Gid)
}

// SameOwner says whether an entry belongs to uid and gid.
func SameOwner(fi fs.FileInfo, uid, gid int) bool {
	u, g := OwnerOf(fi)
	return u == uid && g == gid
}

// deviceOf returns the file system an entry is on.
func deviceOf(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true //nolint:unconvert // Dev is int32 on some systems
}

// SetMeta sets owner, mode (not for links) and, when mtime is not nil,
// the modification time (atime is set to it too) of p without following
// a symbolic link. Changing the owner is attempted only when it differs;
// a process that is not root may not give files away, and then keeps its
// own ownership (EPERM is ignored).
func SetMeta(p string, isLink bool, mode fs.FileMode, uid, gid int, mtime *time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if uid >= 0 && gid >= 0 && !SameOwner(fi, uid, gid) {
		if err := os.Lchown(p, uid, gid); err != nil && !(errors.Is(err, syscall.EPERM) && os.Geteuid() != 0) {
			return err
		}
	}
	if !isLink {
		// After chown, which clears set-id bits.
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	if mtime != nil {
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "utimes", Path: p, Err: err}
		}
	}
	return nil
}
