package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Status is how a job's run ended.
type Status string

const (
	StatusSuccess Status = "success"
	StatusFailure Status = "failure"
	StatusSkipped Status = "skipped"
)

// JobResult is what one job's run did.
type JobResult struct {
	Job      string `json:"job"`
	Role     string `json:"role"`
	Status   Status `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Items    int    `json:"items"`
	Files    int64  `json:"files"`
	Bytes    int64  `json:"bytes"`
	// AddedBytes is how much new data the snapshot added to the repository.
	AddedBytes int64 `json:"added_bytes"`
	Partial    bool  `json:"partial,omitempty"`
	// Full says the run re-read every file (full_every).
	Full bool `json:"full,omitempty"`
	// Resumed is the start of an interrupted run this one finished.
	Resumed   time.Time `json:"resumed,omitzero"`
	Forgotten []Forget  `json:"forgotten,omitempty"`
	// Snapshots is how many snapshots the job has after the run, and
	// HeldBytes the stored space they hold (-1: not measured, as only jobs
	// with a max_size quota measure it).
	Snapshots int           `json:"snapshots"`
	HeldBytes int64         `json:"held_bytes"`
	Warnings  []string      `json:"warnings,omitempty"`
	Notes     []string      `json:"notes,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
	// Recovered says the job succeeded after failing before.
	Recovered bool `json:"recovered,omitempty"`
}

// ApplyOptions steer a run.
type ApplyOptions struct {
	// DryRun does the read-only steps only: hooks and plugins are asked to
	// say what they would do, targets are prepared read-only.
	DryRun bool
	// Saved says the plan was made earlier (runner plan -out): it is
	// applied exactly, and refused for a job whose state or snapshots
	// changed since.
	Saved bool
	// LockWait is how long a job waits for another run of it to end
	// before it is skipped.
	LockWait time.Duration
	// Safety makes the run a safety snapshot before a restore into place:
	// the caller holds the job's lock; the snapshot is tagged "safety";
	// retention, the job's state and notifications are left alone.
	Safety bool
}

// Apply runs the plan's jobs, at most Runner.Parallel at once. A job that
// fails does not stop the others.
func (e *Engine) Apply(ctx context.Context, plan *Plan, jobs []*config.Job, opts ApplyOptions) []*JobResult {
	byName := map[string]*config.Job{}
	for _, j := range jobs {
		byName[j.Name] = j
	}
	results := make([]*JobResult, len(plan.Jobs))
	parallel := e.Config.Runner.Parallel
	if parallel < 1 {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	pool := newTargetPool(e, opts.DryRun)
	if plan.Changes() && !opts.DryRun {
		in := e.inhibitShutdown("backup jobs are running")
		defer in.release()
	}
	var wg sync.WaitGroup
	for i, jp := range plan.Jobs {
		j := byName[jp.Job]
		switch {
		case j == nil:
			results[i] = &JobResult{Job: jp.Job, Status: StatusFailure, Error: "the plan names a job that is not in the configuration"}
			continue
		case jp.Action == ActionSkip:
			results[i] = &JobResult{Job: jp.Job, Status: StatusSkipped, Reason: jp.Reason}
			continue
		case jp.Action == ActionError:
			results[i] = &JobResult{Job: jp.Job, Status: StatusFailure, Error: jp.Error}
			continue
		}
		wg.Add(1)
		go func(i int, j *config.Job, jp *JobPlan) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				results[i] = &JobResult{Job: j.Name, Status: StatusFailure, Error: "interrupted before it started"}
				return
			}
			results[i] = e.runJob(ctx, j, jp, opts, pool)
		}(i, j, jp)
	}
	wg.Wait()
	return results
}

// runJob runs one job under its lock: it checks that the job is still due
// (another process may have run it since the plan), marks the run in the
// job's state, does the work (jobSteps) and records the outcome, so that
// only a successful run makes the job look done.
func (e *Engine) runJob(ctx context.Context, j *config.Job, jp *JobPlan, opts ApplyOptions, pool *targetPool) *JobResult {
	start := e.now()
	began := time.Now()
	log := e.log().With("job", j.Name)
	res := &JobResult{Job: j.Name, Role: string(j.Role), Status: StatusSuccess}
	defer func() {
		res.Duration = time.Since(began)
		args := []any{"status", res.Status, "items", res.Items, "files", res.Files, "bytes", res.Bytes,
			"added", res.AddedBytes, "forgotten", len(res.Forgotten), "duration", res.Duration.Round(time.Millisecond)}
		if res.Snapshot != "" {
			args = append(args, "snapshot", res.Snapshot[:8])
		}
		switch res.Status {
		case StatusFailure:
			log.Error("job failed", append(args, "error", res.Error)...)
		case StatusSkipped:
			log.Info("job skipped", "reason", res.Reason)
		default:
			log.Info("job done", args...)
		}
	}()
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.Timeout)
		defer cancel()
	}

	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()

	var st *JobState
	if !opts.DryRun && !opts.Safety {
		lock, err := e.LockJob(ctx, j.Name, opts.LockWait)
		if err != nil {
			var le *JobLockedError
			if errors.As(err, &le) {
				res.Status, res.Reason = StatusSkipped, le.Error()+": skipped"
				return res
			}
			res.Status, res.Error = StatusFailure, err.Error()
			return res
		}
		defer func() { _ = lock.Unlock() }()
		var hash string
		st, hash, err = e.loadStateHashed(j.Name)
		if err != nil {
			res.Status, res.Error = StatusFailure, err.Error()
			return res
		}
		if opts.Saved && hash != jp.StateHash {
			res.Status, res.Error = StatusFailure, "the saved plan is stale: the job ran or its state changed since the plan was made; make a new plan"
			return res
		}
		if !opts.Saved {
			// The plan was made before the lock was taken: another run may
			// have done the job in between.
			d := due(j, st, start)
			if !d.Due && st.Running == nil && jp.Interrupted == nil && !jp.Forced {
				res.Status, res.Reason = StatusSkipped, d.Reason
				return res
			}
		}
		if st.Running != nil {
			res.Resumed = st.Running.Start
			log.Warn(fmt.Sprintf("resuming interrupted backup of job %s started at %s", j.Name, st.Running.Start.Format(time.RFC3339)),
				"pid", st.Running.PID)
			res.Notes = append(res.Notes, fmt.Sprintf("resuming the interrupted run started at %s (pid %d); data it stored is reused", st.Running.Start.Format(time.RFC3339), st.Running.PID))
		}
		if st.Role != "" && st.Role != string(j.Role) {
			msg := fmt.Sprintf("job %s: this server becomes %s (it was %s)", j.Name, j.Role, st.Role)
			log.Warn(msg)
			res.Notes = append(res.Notes, msg)
			for _, w := range e.notify(ctx, plugins, j, sdk.Notification{Event: sdk.EventRoleChange, Subject: msg, Body: msg + ".\n",
				Fields: map[string]string{"from": st.Role, "to": string(j.Role)}}) {
				res.Warnings = append(res.Warnings, "notify "+w)
			}
		}
		st.Running = &Running{PID: os.Getpid(), Host: Hostname(), Start: start}
		if err := e.SaveState(st); err != nil {
			res.Status, res.Error = StatusFailure, err.Error()
			return res
		}
	}
	res.Full = jp.Full
	if jp.Full {
		log.Info("full run: every file is read again", "why", jp.FullReason)
	}

	env := map[string]string{"RUNNER_JOB": j.Name, "RUNNER_ROLE": string(j.Role)}
	if opts.DryRun {
		env["RUNNER_DRY_RUN"] = "1"
	}
	if !opts.DryRun && !opts.Safety {
		for _, w := range e.notify(ctx, plugins, j, sdk.Notification{Event: sdk.EventStart, Subject: fmt.Sprintf("job %s started", j.Name)}) {
			res.Warnings = append(res.Warnings, "notify "+w)
		}
	}
	if err := e.jobSteps(ctx, j, jp, st, opts, pool, plugins, env, res, log); err != nil {
		res.Status, res.Error = StatusFailure, err.Error()
	}
	if st != nil {
		e.recordRun(st, res, start, log)
		res.Duration = time.Since(began)
		e.notifyRun(ctx, plugins, j, res)
	}
	return res
}

// recordRun writes a finished run into the job's state.
func (e *Engine) recordRun(st *JobState, res *JobResult, start time.Time, log *slog.Logger) {
	rec := &RunRecord{Start: start, End: e.now(), Snapshot: res.Snapshot, Full: res.Full, Files: res.Files,
		Bytes: res.Bytes, AddedBytes: res.AddedBytes, Forgotten: len(res.Forgotten), Partial: res.Partial, Error: res.Error}
	st.Running = nil
	st.Role = res.Role
	if res.Status != StatusFailure {
		// A replica that found itself current did its job too.
		res.Recovered = st.Failures > 0
		st.LastSuccess, st.Failures = rec, 0
		st.Snapshots, st.HeldBytes = res.Snapshots, res.HeldBytes
		if res.Full {
			st.LastFull = start
		}
	} else {
		st.LastFailure = rec
		st.Failures++
	}
	if err := e.SaveState(st); err != nil {
		log.Error("cannot record the run in the job's state", "error", err)
		res.Warnings = append(res.Warnings, err.Error())
	}
}

// bringDown runs Down of every hook that came up, in reverse order, with
// the job's status. A failing down after a good run is reported, but does
// not turn a good snapshot bad.
func (e *Engine) bringDown(plugins *jobPlugins, up []*config.Instance, env map[string]string, jobErr error, res *JobResult, opts ApplyOptions, log *slog.Logger) {
	status := StatusSuccess
	if jobErr != nil {
		status = StatusFailure
	}
	downEnv := map[string]string{"RUNNER_STATUS": string(status)}
	for k, v := range env {
		downEnv[k] = v
	}
	// What the job did, for after/always commands that report or notify.
	if res.Snapshot != "" {
		downEnv["RUNNER_SNAPSHOT"] = res.Snapshot
	}
	downEnv["RUNNER_FILES"] = strconv.FormatInt(res.Files, 10)
	downEnv["RUNNER_BYTES"] = strconv.FormatInt(res.Bytes, 10)
	downEnv["RUNNER_ADDED_BYTES"] = strconv.FormatInt(res.AddedBytes, 10)
	downEnv["RUNNER_FORGOTTEN"] = strconv.Itoa(len(res.Forgotten))
	if jobErr != nil {
		downEnv["RUNNER_ERROR"] = jobErr.Error()
	}
	dctx, cancel := e.downContext()
	defer cancel()
	for i := len(up) - 1; i >= 0; i-- {
		h := up[i]
		c, err := plugins.get(dctx, schema.KindHook, h.Block.TypeName)
		if err == nil {
			var notes []string
			notes, err = c.Down(dctx, sdk.HookRequest{Instance: instance(h), Env: downEnv, DryRun: opts.DryRun})
			res.Notes = append(res.Notes, notes...)
		}
		if err != nil {
			log.Error("hook down failed", "hook", h.Address, "error", err)
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s down: %v", h.Address, err))
		}
	}
}

// jobSteps does a job's work: its target brought up (shared with the
// other jobs of the run that use it: the target's hooks, then Prepare), its
// own hooks up (recorded in up as they succeed), the source captured into
// the repository, then the target given back.
//
// Whatever came up comes down in reverse order, also after a failure or a
// panic (which becomes the job's error before the hooks see its status).
func (e *Engine) jobSteps(ctx context.Context, j *config.Job, jp *JobPlan, st *JobState, opts ApplyOptions, pool *targetPool, plugins *jobPlugins, env map[string]string, res *JobResult, log *slog.Logger) (err error) {
	// Start the source's plugin while the target comes up: both are
	// process launches, and a backup of an unchanged tree is short enough
	// for them to matter. The launch is always waited for, so no plugin
	// starts after the job's plugins are closed.
	type launched struct {
		c   PluginClient
		err error
	}
	srcLaunch := make(chan launched, 1)
	go func() {
		c, err := plugins.get(ctx, schema.KindSource, j.Source.Block.TypeName)
		srcLaunch <- launched{c, err}
	}()
	var src launched
	srcDone := false
	waitSource := func() launched {
		if !srcDone {
			src, srcDone = <-srcLaunch, true
		}
		return src
	}
	defer waitSource()

	ts, err := pool.acquire(ctx, j.Target)
	if err != nil {
		return err
	}
	defer func() {
		if len(res.Forgotten) > 0 {
			pool.markPrune(j.Target)
		}
		note, errs := pool.release(ctx, j.Target, err == nil)
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
		for _, rerr := range errs {
			log.Error("after the job, on its target", "target", j.Target.Address, "error", rerr)
			res.Warnings = append(res.Warnings, rerr.Error())
		}
	}()
	res.Notes = append(res.Notes, ts.notes...)
	var up []*config.Instance
	defer func() { e.bringDown(plugins, up, env, err, res, opts, log) }()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()

	for _, h := range j.Hooks {
		c, err := plugins.get(ctx, schema.KindHook, h.Block.TypeName)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Address, err)
		}
		notes, err := c.Up(ctx, sdk.HookRequest{Instance: instance(h), Env: env, DryRun: opts.DryRun})
		res.Notes = append(res.Notes, notes...)
		if err != nil {
			// Up failed: the hook itself undoes a half-done up; it is not
			// in the down list.
			return fmt.Errorf("%s up: %w", h.Address, err)
		}
		up = append(up, h)
		log.Debug("hook up", "hook", h.Address)
	}

	sl := waitSource()
	if sl.err != nil {
		return fmt.Errorf("%s: %w", j.Source.Address, sl.err)
	}
	sc := sl.c
	if j.Role == config.RoleReplica && !opts.Safety {
		if st == nil {
			st = &JobState{Job: j.Name} // a dry run: nothing is recorded
		}
		return e.replicate(ctx, j, opts, jp, st, ts.Storage, sc, res)
	}
	if !opts.DryRun {
		return e.backup(ctx, j, jp, opts, ts.Storage, sc, res)
	}
	// A dry run reads what the capture produces without storing it.
	w := &countingWriter{ctx: ctx, res: res}
	if err := sc.Capture(ctx, instance(j.Source), w); err != nil {
		return fmt.Errorf("capture %s: %w", j.Source.Address, err)
	}
	if w.err != nil {
		return fmt.Errorf("capture %s: %w", j.Source.Address, w.err)
	}
	return nil
}

func (e *Engine) downContext() (context.Context, context.CancelFunc) {
	d := e.DownTimeout
	if d <= 0 {
		d = 5 * time.Minute
	}
	return context.WithTimeout(context.Background(), d)
}

// countingWriter receives the capture of a dry run: it reads what it is
// given — walking trees and draining streams — to report its size, and
// stores nothing.
type countingWriter struct {
	ctx  context.Context
	res  *JobResult
	mu   sync.Mutex
	err  error
	done bool
}

func (w *countingWriter) Tree(item sdk.Item) error {
	if item.Tree == nil || !filepath.IsAbs(item.Tree.Root) {
		return fmt.Errorf("tree item %q has no absolute root", item.Name)
	}
	files, bytes, err := walkTree(w.ctx, item.Tree)
	if err != nil {
		return fmt.Errorf("read tree item %q: %w", item.Name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Items++
	w.res.Files += files
	w.res.Bytes += bytes
	return nil
}

// walkTree goes through a tree item as the source described it: its
// paths under its root, minus excluded entries, staying on the root's file
// system when asked. It counts regular files and their bytes.
func walkTree(ctx context.Context, t *sdk.TreeSpec) (files, bytes int64, err error) {
	m, err := pathmatch.New(t.Excludes)
	if err != nil {
		return 0, 0, fmt.Errorf("exclude patterns: %w", err)
	}
	rootInfo, err := os.Stat(t.Root)
	if err != nil {
		return 0, 0, err
	}
	rootDev := deviceOf(rootInfo)
	paths := t.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(t.Root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			rel, _ := filepath.Rel(t.Root, path)
			if rel != "." && m.Match(filepath.ToSlash(rel), d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() && t.OneFileSystem && rel != "." {
				if info, err := d.Info(); err == nil && deviceOf(info) != rootDev {
					return filepath.SkipDir
				}
			}
			if d.Type().IsRegular() {
				info, err := d.Info()
				if err != nil {
					return err
				}
				files++
				bytes += info.Size()
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return files, bytes, nil
}

func deviceOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

func (w *countingWriter) Stream(item sdk.Item) (sdk.StreamWriter, error) {
	w.mu.Lock()
	w.res.Items++
	w.mu.Unlock()
	return &countingStream{w: w}, nil
}

func (w *countingWriter) Done(r sdk.CaptureResult) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("capture reported done twice")
	}
	w.done = true
	w.res.Partial = r.Partial
	w.res.Warnings = append(w.res.Warnings, r.Warnings...)
	return nil
}

type countingStream struct {
	w *countingWriter
	n int64
}

func (s *countingStream) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return len(p), nil
}

func (s *countingStream) Close() error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.res.Bytes += s.n
	return nil
}

func (s *countingStream) CloseWithError(err error) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if s.w.err == nil {
		s.w.err = err
	}
	return nil
}

var (
	_ sdk.CaptureWriter = (*countingWriter)(nil)
	_ io.Writer         = (*countingStream)(nil)
)

// SafetyTag marks the snapshots taken before a restore into place.
const SafetyTag = "safety"

// SafetySnapshot captures a job's current state before a restore
// overwrites it, so the restore can be undone with runner restore JOB
// --snapshot ID. The caller holds the job's lock.
func (e *Engine) SafetySnapshot(ctx context.Context, j *config.Job) (*JobResult, error) {
	jp := &JobPlan{Job: j.Name, Action: ActionCapture, Forced: true, Reason: "safety snapshot before a restore"}
	res := e.Apply(ctx, &Plan{Jobs: []*JobPlan{jp}}, []*config.Job{j}, ApplyOptions{Safety: true})[0]
	if res.Status != StatusSuccess {
		return res, fmt.Errorf("safety snapshot of %s failed, so nothing was restored: %s", j.Name, res.Error)
	}
	return res, nil
}
