package main

import (
	"syscall"
	"unsafe"
)

// lutimes sets a symlink's own times (utimensat with AT_SYMLINK_NOFOLLOW).
func lutimes(p string, ns int64) error {
	atFDCWD := -0x64 // AT_FDCWD, a variable so that it converts to uintptr
	const atSymlinkNofollow = 0x100
	b, err := syscall.BytePtrFromString(p)
	if err != nil {
		return err
	}
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(ns), syscall.NsecToTimespec(ns)}
	_, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(b)),
		uintptr(unsafe.Pointer(&ts[0])), atSymlinkNofollow, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
