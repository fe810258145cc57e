package main

import "syscall"

// sysProcAttr makes the kernel kill the command if this plugin dies (the
// runner kills its plugins when it goes away): a dump must not outlive the
// backup it was for.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
