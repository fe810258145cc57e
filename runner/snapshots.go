package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/archiver"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/policies"
)

// JobRepository is a job's repository opened for an operation, with its
// target up. Close closes the repository and brings the target down.
type JobRepository struct {
	Repo *repo.Repository
	ts   *TargetSession
}

// Close closes the repository, then releases the target; ok is the
// operation's outcome, passed to the target's hooks.
func (jr *JobRepository) Close(ok bool) error {
	err := jr.Repo.Close(context.Background())
	if cerr := jr.ts.Close(ok); err == nil {
		err = cerr
	}
	return err
}

// OpenJobRepository brings up the job's target and opens its repository.
func (e *Engine) OpenJobRepository(ctx context.Context, j *config.Job, lock repo.LockMode, op string) (*JobRepository, error) {
	readOnly := lock == repo.LockNone
	ts, err := e.OpenTarget(ctx, j.Target, readOnly, map[string]string{"RUNNER_JOB": j.Name, "RUNNER_OPERATION": op})
	if err != nil {
		return nil, err
	}
	r, err := e.OpenRepository(ctx, ts, lock)
	if err != nil {
		_ = ts.Close(false)
		return nil, err
	}
	return &JobRepository{Repo: r, ts: ts}, nil
}

// JobSnapshots lists a job's snapshots, oldest first.
func JobSnapshots(ctx context.Context, r *repo.Repository, job string) ([]*repo.Snapshot, error) {
	all, err := r.ListSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, sn := range all {
		if sn.Job == job {
			out = append(out, sn)
		}
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Time.Before(out[k].Time) })
	return out, nil
}

// ParseAt reads a restore point: a duration back from now ("40d", "12h"),
// a date ("2026-10-01", the end of that day), a local time
// ("2026-10-01T03:00"), or RFC 3339.
func ParseAt(s string, now time.Time) (time.Time, error) {
	if d, err := policies.ParseDuration(s); err == nil {
		return d.SubtractFrom(now), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", s, now.Location()); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, now.Location()); err == nil {
		return t.AddDate(0, 0, 1).Add(-time.Nanosecond), nil
	}
	return time.Time{}, fmt.Errorf("invalid --at %q: give an age such as 40d, a date 2026-10-01, a time 2026-10-01T03:00, or RFC 3339", s)
}

// SelectSnapshot picks a job's snapshot: by id prefix, or the newest at or
// before at, or the newest.
func SelectSnapshot(ctx context.Context, r *repo.Repository, job, idPrefix string, at time.Time) (*repo.Snapshot, error) {
	if idPrefix != "" {
		id, err := r.FindSnapshot(ctx, idPrefix)
		if err != nil {
			return nil, err
		}
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, err
		}
		if sn.Job != job {
			return nil, fmt.Errorf("snapshot %s belongs to job %s, not %s", id.Short(), sn.Job, job)
		}
		return sn, nil
	}
	sns, err := JobSnapshots(ctx, r, job)
	if err != nil {
		return nil, err
	}
	sns = BackupSnapshots(sns) // not replicas' records of their own state
	if len(sns) == 0 {
		return nil, fmt.Errorf("job %s has no snapshots", job)
	}
	if at.IsZero() {
		return sns[len(sns)-1], nil
	}
	for i := len(sns) - 1; i >= 0; i-- {
		if !sns[i].Time.After(at) {
			return sns[i], nil
		}
	}
	return nil, fmt.Errorf("job %s has no snapshot at or before %s (the oldest is from %s)", job, at.Format(time.RFC3339), sns[0].Time.Format(time.RFC3339))
}

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	To      string   // directory to restore into (required in this version)
	Include []string // paths relative to an item's root
	// Sparse leaves all-zero chunks of files as holes (archiver.RestoreOptions.Sparse).
	Sparse bool
}

// RestoreResult says what a restore wrote.
type RestoreResult struct {
	Snapshot string `json:"snapshot"`
	Time     string `json:"time"`
	To       string `json:"to"`
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Bytes    uint64 `json:"bytes"`
	Holes    uint64 `json:"holes,omitempty"` // of Bytes, left as holes (Sparse)
	Streams  int    `json:"streams"`
}

// RestoreSnapshot writes a snapshot's items under o.To: each tree item as
// the directory (or file) it captured, each stream item as a file named
// after the item.
func (e *Engine) RestoreSnapshot(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, o RestoreOptions) (*RestoreResult, error) {
	if o.To == "" {
		return nil, fmt.Errorf("restore into a directory needs one: give --to DIR")
	}
	if err := os.MkdirAll(o.To, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	res := &RestoreResult{Snapshot: sn.ID.String(), Time: sn.Time.Format(time.RFC3339), To: o.To}
	for _, it := range sn.Items {
		switch it.Kind {
		case repo.ItemTree:
			st, err := archiver.Restore(ctx, r, it, o.To, archiver.RestoreOptions{Include: o.Include, Owners: os.Geteuid() == 0, Sparse: o.Sparse, Log: e.log(), Progress: &e.restored})
			if err != nil {
				return res, fmt.Errorf("restore item %q: %w", it.Name, err)
			}
			res.Files += st.Files
			res.Dirs += st.Dirs
			res.Bytes += st.Bytes
			res.Holes += st.Holes
		case repo.ItemStream:
			if len(o.Include) > 0 {
				continue
			}
			n, err := restoreStreamFile(ctx, r, it, filepath.Join(o.To, streamFileName(it.Name)), &e.restored)
			if err != nil {
				return res, fmt.Errorf("restore item %q: %w", it.Name, err)
			}
			res.Streams++
			res.Bytes += uint64(n)
		}
	}
	return res, nil
}

// streamFileName turns an item name into a safe file name.
func streamFileName(name string) string {
	s := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if s == "" || s == "." || s == ".." {
		s = "stream"
	}
	return s
}

// restoreStreamFile writes a stream item to path through a temporary file,
// so a failed restore never leaves a file that looks complete.
func restoreStreamFile(ctx context.Context, r *repo.Repository, it repo.Item, path string, p *archiver.Progress) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := archiver.RestoreStream(ctx, r, it, restoreCounter{tmp, p})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), path)
}
