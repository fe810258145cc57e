// Package command runs the operator's commands for the built-in hooks
// (exec, vpn): an argv without a shell, with a timeout that takes down
// everything the command started, and errors that say what failed and
// show the end of its stderr.
package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec is one command to run.
type Spec struct {
	Argv    []string      // the program and its arguments; no shell
	Dir     string        // working directory; "" inherits the runner's
	Env     []string      // the complete environment, KEY=VALUE; see Environ
	Timeout time.Duration // 0: only ctx limits the command
}

// Result describes a finished command.
type Result struct {
	Elapsed time.Duration
	Stdout  string // the last lines of standard output
	Stderr  string // the last lines of standard error
}

// killGrace is how long a command that timed out gets between SIGTERM and
// SIGKILL, to clean up (a VPN client removing its routes, say). A
// variable so tests can shorten it.
var killGrace = 5 * time.Second

// tailBytes and tailLines bound the output kept for messages.
const (
	tailBytes = 16 << 10
	tailLines = 10
)

// Run runs the command and waits for it. It returns an error if the
// command cannot start, exits non-zero or is killed, and when ctx is done
// or the timeout passes: then the command's whole process group gets
// SIGTERM, and SIGKILL after a grace period, so that nothing it started
// is left running.
//
// Processes the command leaves behind in the background on success (a
// daemon) are not touched; Run stops waiting for their output shortly
// after the command itself exits.
func Run(ctx context.Context, s Spec) (Result, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Result{}, errors.New("empty command")
	}
	runCtx := ctx
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = s.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	var stdout, stderr tail
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd, syscall.SIGTERM) }
	// WaitDelay does two jobs: after cancellation it is the grace before
	// the kill, and after a normal exit it bounds the wait for output
	// pipes that a background child keeps open.
	cmd.WaitDelay = killGrace

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", Format(s.Argv), err)
	}
	err := cmd.Wait()
	res := Result{Elapsed: time.Since(start), Stdout: stdout.lines(), Stderr: stderr.lines()}
	// A command that exited 0 succeeded, even if it left a background
	// child holding its output open (ErrWaitDelay). exec reports a command
	// that exited 0 only after being signalled as an error, so a success
	// here was not cut short.
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success()) {
		return res, nil
	}
	if runCtx.Err() != nil {
		// Whatever is left of the group gets no more grace.
		_ = signalGroup(cmd, syscall.SIGKILL)
		if ctx.Err() == nil {
			return res, &Error{Argv: s.Argv, Reason: fmt.Sprintf("timed out after %s and was killed", s.Timeout), Stderr: res.Stderr}
		}
		return res, &Error{Argv: s.Argv, Reason: "was stopped: " + context.Cause(ctx).Error(), Stderr: res.Stderr, cause: ctx.Err()}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return res, &Error{Argv: s.Argv, Reason: describeExit(ee.ProcessState), Stderr: res.Stderr}
	}
	return res, &Error{Argv: s.Argv, Reason: "failed: " + err.Error(), Stderr: res.Stderr, cause: err}
}

// Error is a command that failed.
type Error struct {
	Argv   []string
	Reason string // "exited with status 2", "timed out after 5m0s and was killed", ...
	Stderr string // the last lines of its stderr
	cause  error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("command %s %s", Format(e.Argv), e.Reason)
	if e.Stderr != "" {
		msg += "; stderr:\n" + indent(e.Stderr)
	}
	return msg
}

// Unwrap returns the context error for a stopped command, so callers can
// tell cancellation apart.
func (e *Error) Unwrap() error { return e.cause }

func describeExit(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + ws.Signal().String()
	}
	return "exited with status " + strconv.Itoa(ps.ExitCode())
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// Environ returns the runner's environment with the overlays applied in
// order (a later one wins), sorted so that runs are reproducible.
func Environ(overlays ...map[string]string) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, o := range overlays {
		for k, v := range o {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Format renders an argv for messages, quoting what a shell would need
// quoted so that the operator can copy it.
func Format(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			parts[i] = a
		} else {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(parts, " ")
}

// tail is an io.Writer that keeps the last tailBytes written. The command
// may write through it from exec's copying goroutines while Run waits, so
// it locks.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > tailBytes {
		p = p[len(p)-tailBytes:]
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// lines returns the last tailLines non-empty lines.
func (t *tail) lines() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	text := strings.TrimRight(strings.ToValidUTF8(string(t.buf), "?"), "\n\r\t ")
	ls := strings.Split(text, "\n")
	if len(ls) > tailLines {
		ls = ls[len(ls)-tailLines:]
	}
	return strings.TrimSpace(strings.Join(ls, "\n"))
}
