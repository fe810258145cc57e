package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// JobState is what runner remembers about a job between runs, in
// state_dir/jobs/<job>.json. Only the last successful run decides whether
// a job is due; the last failure is kept to report it (and to notice a
// recovery).
type JobState struct {
	Job         string     `json:"job"`
	LastSuccess *RunRecord `json:"last_success,omitempty"`
	LastFailure *RunRecord `json:"last_failure,omitempty"`
	// LastFull is when the last successful run that re-read every file
	// (full_every) started.
	LastFull time.Time `json:"last_full,omitzero"`
	// Running is set while a run is under way and cleared when it ends; a
	// run that finds it set with the job's lock free knows the previous run
	// was killed, and says so.
	Running *Running `json:"running,omitempty"`
	// Items is each item's status in the last run that captured it.
	Items map[string]ItemStatus `json:"items,omitempty"`
	// Replica is the position a replica has applied (the snapshot).
	Replica *ReplicaPosition `json:"replica,omitempty"`
	// Role is the job's role on this server in its last run; a different
	// role now is a role change (a site moved).
	Role string `json:"role,omitempty"`
	// Failures counts consecutive failed runs (0 after a success).
	Failures int `json:"consecutive_failures,omitempty"`
	// Snapshots and HeldBytes are the job's snapshot count and the stored
	// space they hold (-1: not measured) after its last successful run.
	Snapshots int   `json:"snapshots"`
	HeldBytes int64 `json:"held_bytes"`
}

// RunRecord describes one run of a job.
type RunRecord struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Snapshot   string    `json:"snapshot,omitempty"`
	Full       bool      `json:"full,omitempty"`
	Files      int64     `json:"files,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	AddedBytes int64     `json:"added_bytes,omitempty"`
	Forgotten  int       `json:"forgotten,omitempty"`
	Partial    bool      `json:"partial,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Running marks a run under way.
type Running struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Start time.Time `json:"start"`
}

// ItemStatus is one item's outcome in the last run.
type ItemStatus struct {
	Kind  string `json:"kind"`
	Bytes uint64 `json:"bytes"`
}

// ReplicaPosition is what a replica last applied.
type ReplicaPosition struct {
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Applied  time.Time `json:"applied"`
}

// safeName turns a job name (site["blog"]) into a file name.
func safeName(job string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, job)
}

func (e *Engine) statePath(job string) string {
	return filepath.Join(e.Config.Runner.StateDir, "jobs", safeName(job)+".json")
}

// LoadState reads a job's state; a job that never ran has an empty one.
func (e *Engine) LoadState(job string) (*JobState, error) {
	path := e.statePath(job)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &JobState{Job: job}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state of job %s: %w", job, err)
	}
	st := &JobState{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("read state of job %s: %s is damaged (%v); move it away to start the job's history afresh", job, path, err)
	}
	st.Job = job
	return st, nil
}

// SaveState writes a job's state atomically: a temporary file beside it,
// fsynced, renamed over the old one, and the directory fsynced, so that a
// crash leaves the old state or the new one, never a mix.
func (e *Engine) SaveState(st *JobState) error {
	path := e.statePath(st.Job)
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state of job %s: %w", st.Job, err)
	}
	return nil
}

// writeFileAtomic replaces path with data: write, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
