//go:build !unix

package command

import (
	"os"
	"os/exec"
	"syscall"
)

// Without process groups, only the command itself can be stopped.
func setProcessGroup(cmd *exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) error {
	if cmd.Process == nil {
		return os.ErrProcessDone
	}
	return cmd.Process.Kill()
}
