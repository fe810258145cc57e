package runner

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// inhibitor holds a systemd-logind inhibitor lock ("shutdown:sleep",
// mode block) for as long as jobs run, so that a shutdown or suspend
// waits for the backup instead of cutting it. It is held by a
// systemd-inhibit child running "sleep infinity"; releasing kills it.
type inhibitor struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed by release
	exited chan struct{} // closed once the child is reaped
}

// logindAvailable and inhibitCommand are variables so tests can stand in
// for a machine with logind.
var (
	logindAvailable = func() bool {
		// sd_booted(3): systemd is PID 1 when this directory exists; logind
		// then keeps its state under /run/systemd.
		fi, err := os.Stat("/run/systemd/system")
		return err == nil && fi.IsDir()
	}
	inhibitCommand = "systemd-inhibit"
)

// inhibitShutdown takes the lock if runner { inhibit_shutdown } asks for
// it and the machine has logind; otherwise it says why not, at debug
// level, and returns nil.
func (e *Engine) inhibitShutdown(why string) *inhibitor {
	if !e.Config.Runner.InhibitShutdown {
		return nil
	}
	path, err := exec.LookPath(inhibitCommand)
	if !logindAvailable() || err != nil {
		e.log().Debug("inhibit_shutdown: systemd-logind is not available here (no systemd, or no systemd-inhibit); shutdown is not held off")
		return nil
	}
	cmd := exec.Command(path, "--what=shutdown:sleep", "--who=runner", "--why="+why, "--mode=block", "sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.log().Warn("inhibit_shutdown: cannot start systemd-inhibit; shutdown is not held off", "error", err)
		return nil
	}
	in := &inhibitor{cmd: cmd, done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(in.exited)
		err := cmd.Wait()
		select {
		case <-in.done:
		default:
			// It ended on its own: logind refused (no D-Bus, no permission).
			e.log().Warn("inhibit_shutdown: systemd-inhibit ended early; shutdown is not held off", "error", err)
		}
	}()
	e.log().Debug("inhibit_shutdown: holding a logind inhibitor lock while jobs run", "pid", cmd.Process.Pid)
	return in
}

// release lets shutdown proceed again.
func (in *inhibitor) release() {
	if in == nil {
		return
	}
	close(in.done)
	// The whole process group: systemd-inhibit and its sleep.
	_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
		<-in.exited
	}
}
