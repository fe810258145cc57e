package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// JobLock keeps two runs of one job apart: an flock(2) on
// state_dir/locks/<job>.lock, which the kernel drops when its holder dies
// (also by kill -9), so a lock left by a dead process is simply free. The
// file's content (pid, host, start) only serves the message a second run
// prints.
type JobLock struct {
	f    *os.File
	path string
}

// LockHolder is what a lock file says about its holder.
type LockHolder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Start time.Time `json:"start"`
}

// ErrJobLocked is returned (wrapped in a *JobLockedError) when another
// process runs the job.
var ErrJobLocked = errors.New("job is already running")

// JobLockedError names the process that holds a job's lock.
type JobLockedError struct {
	Job    string
	Holder LockHolder
}

func (e *JobLockedError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("job %s is already running in another process", e.Job)
	}
	return fmt.Sprintf("job %s is already running (pid %d on %s, since %s)", e.Job, h.PID, h.Host, h.Start.Format(time.RFC3339))
}

func (e *JobLockedError) Unwrap() error { return ErrJobLocked }

func (e *Engine) lockPath(job string) string {
	return filepath.Join(e.Config.Runner.StateDir, "locks", safeName(job)+".lock")
}

// LockJob takes a job's lock. With wait 0 it fails at once with a
// *JobLockedError when another process holds it; otherwise it retries
// until wait has passed or ctx ends.
func (e *Engine) LockJob(ctx context.Context, job string, wait time.Duration) (*JobLock, error) {
	path := e.lockPath(job)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	// A little patience even when asked for none: runner plan and status
	// test the lock by taking it shared for an instant.
	deadline := time.Now().Add(max(wait, time.Second))
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock job %s: %s: %w", job, path, err)
		}
		if time.Now().After(deadline) {
			var h LockHolder
			if b, rerr := os.ReadFile(path); rerr == nil {
				_ = json.Unmarshal(b, &h)
			}
			f.Close()
			return nil, &JobLockedError{Job: job, Holder: h}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	b, _ := json.Marshal(LockHolder{PID: os.Getpid(), Host: Hostname(), Start: e.now()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	return &JobLock{f: f, path: path}, nil
}

// Unlock releases the lock. The file stays: removing it would race with a
// process that opened it and waits for the flock.
func (l *JobLock) Unlock() error {
	_ = l.f.Truncate(0)
	return l.f.Close()
}

// JobLockHolder says whether a process holds the job's lock now, and what
// its lock file says about it. It tests the lock by taking it shared for an
// instant, so it never blocks a run for longer than that.
func (e *Engine) JobLockHolder(job string) (LockHolder, bool) {
	var h LockHolder
	f, err := os.Open(e.lockPath(job))
	if err != nil {
		return h, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return h, false
	}
	if b, err := os.ReadFile(f.Name()); err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h, true
}
