package command

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRunSucceeds(t *testing.T) {
	res, err := Run(context.Background(), Spec{Argv: sh("echo hello; echo warn >&2")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "hello" || res.Stderr != "warn" {
		t.Fatalf("stdout %q, stderr %q", res.Stdout, res.Stderr)
	}
}

func TestRunNonZeroExitNamesCommandStatusAndStderrTail(t *testing.T) {
	script := "for i in $(seq 1 30); do echo line$i >&2; done; exit 3"
	_, err := Run(context.Background(), Spec{Argv: sh(script)})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *Error", err)
	}
	msg := err.Error()
	for _, want := range []string{"command /bin/sh -c '" + script + "'", "exited with status 3", "line30", "line21"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "line20\n") {
		t.Errorf("error keeps more than the last %d lines: %q", tailLines, msg)
	}
}

func TestRunMissingProgram(t *testing.T) {
	_, err := Run(context.Background(), Spec{Argv: []string{"/nonexistent/prog"}})
	if err == nil || !strings.Contains(err.Error(), "start /nonexistent/prog") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Run(context.Background(), Spec{}); err == nil {
		t.Fatal("an empty argv ran")
	}
}

func TestRunUsesDirAndEnv(t *testing.T) {
	dir := t.TempDir()
	res, err := Run(context.Background(), Spec{
		Argv: sh(`pwd; echo "$FOO"`),
		Dir:  dir,
		Env:  Environ(map[string]string{"FOO": "one"}, map[string]string{"FOO": "two"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != dir+"\ntwo" {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

// TestRunTimeoutKillsTheWholeProcessGroup starts a command that leaves a
// grandchild running and ignores SIGTERM, and checks that both are gone
// after the timeout.
func TestRunTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	old := killGrace
	killGrace = 300 * time.Millisecond
	defer func() { killGrace = old }()
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := `trap '' TERM; sleep 60 & echo $! > ` + pidFile + `; wait`
	start := time.Now()
	_, err := Run(context.Background(), Spec{Argv: sh(script), Timeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		// The grandchild is reparented and reaped by init; until then it
		// may linger as a zombie, which /proc shows as state Z.
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if syscall.Kill(pid, 0) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunCancelledContextStopsTheCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Run(ctx, Spec{Argv: sh("sleep 30")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want one wrapping context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "was stopped") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunDoesNotWaitForeverForABackgroundChild(t *testing.T) {
	old := killGrace
	killGrace = 200 * time.Millisecond
	defer func() { killGrace = old }()
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The background sleep keeps stdout and stderr open.
	_, err := Run(context.Background(), Spec{Argv: sh("sleep 30 & echo $! > " + pidFile)})
	if err != nil {
		t.Fatalf("a command that exits 0 leaving a daemon failed: %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestFormatQuotesWhatAShellWould(t *testing.T) {
	got := Format([]string{"/usr/bin/vpn", "up", "my net", "it's", ""})
	want := `/usr/bin/vpn up 'my net' 'it'\''s' ''`
	if got != want {
		t.Fatalf("Format = %s, want %s", got, want)
	}
}
