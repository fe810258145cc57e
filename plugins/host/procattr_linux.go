package host

import "syscall"

// sysProcAttr puts a plugin process in its own process group, so that a
// Ctrl-C on the terminal (SIGINT to the foreground group) reaches only the
// runner, which then brings down what plugins brought up before stopping
// them; and asks the kernel to SIGKILL the plugin if the runner dies, even
// by SIGKILL.
//
// Pdeathsig fires when the *thread* that started the child exits. Go only
// ends threads whose goroutine exits while locked to them
// (runtime.LockOSThread), which the catalog never does, so in practice it
// fires when the runner exits; sdk.Serve also watches its parent process
// as a second line of defence.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills what is left of a plugin's process group.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
