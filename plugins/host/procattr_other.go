//go:build !linux

package host

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; sdk.Serve's
// watch of its parent process is what ends an orphaned plugin.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup does nothing where plugins do not get their own process group.
func killGroup(int) {}
