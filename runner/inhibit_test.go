package runner

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	config "github.com/backup-runner/runner/hcl"
)

func TestInhibitShutdownHoldsALockWhileJobsRun(t *testing.T) {
	dir := t.TempDir()
	args, pidFile := filepath.Join(dir, "args"), filepath.Join(dir, "pid")
	// A stand-in for systemd-inhibit: it records how it was called and
	// then holds, as the real one does while its command runs.
	script := filepath.Join(dir, "systemd-inhibit")
	body := "#!/bin/sh\necho \"$@\" > " + args + "\necho $$ > " + pidFile + "\nexec sleep 600\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	oldAvail, oldCmd := logindAvailable, inhibitCommand
	t.Cleanup(func() { logindAvailable, inhibitCommand = oldAvail, oldCmd })
	logindAvailable, inhibitCommand = func() bool { return true }, script

	e := &Engine{Config: &config.Config{Runner: config.RunnerSettings{InhibitShutdown: true}}}
	in := e.inhibitShutdown("backup jobs are running")
	if in == nil {
		t.Fatal("no inhibitor")
	}
	var pid int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		if pid, _ = strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the inhibitor never started")
		}
	}
	b, _ := os.ReadFile(args)
	if got := strings.TrimSpace(string(b)); got != "--what=shutdown:sleep --who=runner --why=backup jobs are running --mode=block sleep infinity" {
		t.Errorf("systemd-inhibit called with %q", got)
	}
	in.release()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Error("the inhibitor still runs after release")
	}
}

func TestInhibitShutdownSaysWhyNotWithoutLogind(t *testing.T) {
	old := logindAvailable
	t.Cleanup(func() { logindAvailable = old })
	logindAvailable = func() bool { return false }
	var buf bytes.Buffer
	e := &Engine{
		Config: &config.Config{Runner: config.RunnerSettings{InhibitShutdown: true}},
		Log:    slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if in := e.inhibitShutdown("x"); in != nil {
		in.release()
		t.Fatal("an inhibitor without logind")
	}
	if !strings.Contains(buf.String(), "systemd-logind is not available here") {
		t.Errorf("debug log: %q", buf.String())
	}
}
