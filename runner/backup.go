package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/archiver"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/plugins/sdk"
)

// repoWriter receives a capture and stores it in the repository through
// the archiver: tree items are read by the host from local paths, stream
// items are chunked as they arrive.
type repoWriter struct {
	ctx  context.Context
	arch *archiver.Archiver

	mu     sync.Mutex
	items  []repo.Item
	result sdk.CaptureResult
	done   bool
	err    error
}

var _ sdk.CaptureWriter = (*repoWriter)(nil)

func (w *repoWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *repoWriter) add(it repo.Item) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, it)
}

func (w *repoWriter) Tree(item sdk.Item) error {
	if item.Tree == nil || !filepath.IsAbs(item.Tree.Root) {
		return fmt.Errorf("tree item %q has no absolute root", item.Name)
	}
	it, err := w.arch.Tree(w.ctx, item.Name, archiver.TreeSpec{
		Root:          item.Tree.Root,
		Paths:         item.Tree.Paths,
		Excludes:      item.Tree.Excludes,
		OneFileSystem: item.Tree.OneFileSystem,
	})
	if err != nil {
		err = fmt.Errorf("store tree item %q: %w", item.Name, err)
		w.fail(err)
		return err
	}
	w.add(it)
	return nil
}

func (w *repoWriter) Stream(item sdk.Item) (sdk.StreamWriter, error) {
	return &repoStream{w: w, name: item.Name, sw: w.arch.Stream(w.ctx, item.Name)}, nil
}

func (w *repoWriter) Done(r sdk.CaptureResult) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("capture reported done twice")
	}
	w.done, w.result = true, r
	return nil
}

type repoStream struct {
	w    *repoWriter
	name string
	sw   *archiver.StreamWriter
	once sync.Once
}

func (s *repoStream) Write(p []byte) (int, error) { return s.sw.Write(p) }

func (s *repoStream) Close() error {
	var err error
	s.once.Do(func() {
		var it repo.Item
		if it, err = s.sw.Close(); err != nil {
			err = fmt.Errorf("store stream item %q: %w", s.name, err)
			s.w.fail(err)
			return
		}
		s.w.add(it)
	})
	return err
}

func (s *repoStream) CloseWithError(cause error) error {
	s.once.Do(func() {
		s.sw.Abort(cause)
		s.w.fail(fmt.Errorf("stream item %q: %w", s.name, cause))
	})
	return nil
}

// cachePath is where a job's change cache lives.
func (e *Engine) cachePath(job string) string {
	return filepath.Join(e.Config.Runner.StateDir, "cache", safeName(job)+".cache")
}

// Hostname is this machine's name as runner records it in snapshots:
// $RUNNER_HOSTNAME when set (rehearsals), the system's otherwise.
func Hostname() string {
	if h := os.Getenv(config.HostnameEnv); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// backup captures a job's source into the repository on its target and
// saves a snapshot: packs and index first, then the snapshot document,
// then the change cache for the next run.
func (e *Engine) backup(ctx context.Context, j *config.Job, jp *JobPlan, opts ApplyOptions, st repo.Storage, src PluginClient, res *JobResult) error {
	// The change cache is read while the repository opens: both are reads
	// (cold, after a night's other work) and decodes of tens of MB on a
	// big job, and the walk waits for both.
	cache := e.preloadCache(j.Name)
	defer cache.wait()
	r, err := e.openRepo(ctx, j.Target, st, repo.LockShared)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.Background()) }()
	if opts.Saved && jp.RepoHash != "" {
		sns, err := JobSnapshots(ctx, r, j.Name)
		if err != nil {
			return fmt.Errorf("list snapshots of %s: %w", j.Name, err)
		}
		if snapshotsHash(sns) != jp.RepoHash {
			return fmt.Errorf("the saved plan is stale: the snapshots of job %s on %s changed since the plan was made; make a new plan", j.Name, j.Target.Address)
		}
	}

	spec := captureSpec{full: jp.Full, tags: tags(opts), cache: cache}
	if _, err := e.captureInto(ctx, r, j, src, spec, res); err != nil {
		return err
	}
	if opts.Safety {
		return nil
	}
	// Retention comes after the snapshot is safe; its failure is reported
	// but does not make the snapshot bad.
	if err := e.forget(ctx, r, j, jp, opts, res); err != nil {
		e.log().Error("retention failed", "job", j.Name, "error", err)
		res.Warnings = append(res.Warnings, "retention: "+err.Error())
	}
	return nil
}

// captureSpec says how to take one snapshot.
type captureSpec struct {
	full bool              // re-read every file
	tags []string          // the snapshot's tags
	meta map[string]string // added to the source's metadata
	role string            // the snapshot's role, default the job's
	// cache is the job's change cache read ahead (preloadCache); nil:
	// captureInto reads it.
	cache *cachePreload
}

// cachePreload is a job's change cache being read in the background.
type cachePreload struct {
	done  chan struct{}
	cache *archiver.Cache
	err   error
}

// preloadCache starts reading a job's change cache; the caller must wait
// for it (get or wait) before it returns.
func (e *Engine) preloadCache(job string) *cachePreload {
	p := &cachePreload{done: make(chan struct{})}
	path := e.cachePath(job)
	go func() {
		defer close(p.done)
		p.cache, p.err = archiver.ReadCache(path)
	}()
	return p
}

func (p *cachePreload) wait() { <-p.done }

// get waits for the read and returns the cache if it is repository
// repoID's (else an empty one) and the read's error.
func (p *cachePreload) get(repoID string) (*archiver.Cache, error) {
	p.wait()
	return p.cache.For(repoID), p.err
}

// captureInto runs the source's capture into an open repository and saves
// the snapshot (packs and index first, then the document, then the change
// cache), filling res with what was captured.
func (e *Engine) captureInto(ctx context.Context, r *repo.Repository, j *config.Job, src PluginClient, spec captureSpec, res *JobResult) (*repo.Snapshot, error) {
	cachePath := e.cachePath(j.Name)
	var cache *archiver.Cache
	var cerr error
	if spec.cache != nil {
		cache, cerr = spec.cache.get(r.Config().ID)
	} else {
		cache, cerr = archiver.LoadCache(cachePath, r.Config().ID)
	}
	if cerr != nil {
		e.log().Warn("change cache unreadable; every file will be read", "job", j.Name, "cache", cachePath, "error", cerr)
	}
	arch := archiver.New(r, archiver.Options{Cache: cache, Full: spec.full, Log: e.log().With("job", j.Name)})
	e.live.Store(j.Name, arch)
	defer e.live.Delete(j.Name)
	start := e.now()
	w := &repoWriter{ctx: ctx, arch: arch}
	if err := src.Capture(ctx, instance(j.Source), w); err != nil {
		return nil, fmt.Errorf("capture %s: %w", j.Source.Address, err)
	}
	if w.err != nil {
		return nil, w.err
	}
	if !w.done {
		return nil, fmt.Errorf("capture %s ended without reporting done: nothing was saved", j.Source.Address)
	}
	stats := arch.Stats()
	meta := w.result.Meta
	if len(spec.meta) > 0 {
		meta = map[string]string{}
		for k, v := range w.result.Meta {
			meta[k] = v
		}
		for k, v := range spec.meta {
			meta[k] = v
		}
	}
	role := spec.role
	if role == "" {
		role = string(j.Role)
	}
	sn := &repo.Snapshot{
		Job:     j.Name,
		Host:    Hostname(),
		Time:    start,
		Role:    role,
		Items:   w.items,
		Source:  meta,
		Tags:    spec.tags,
		Partial: w.result.Partial || stats.Errors > 0,
		Summary: repo.Summary{
			Start: start, End: e.now(),
			Files: stats.Files, Dirs: stats.Dirs, Bytes: stats.Bytes,
			AddedBytes: stats.AddedBytes, Errors: stats.Errors,
		},
	}
	id, err := r.SaveSnapshot(ctx, sn)
	if err != nil {
		return nil, fmt.Errorf("save snapshot: %w", err)
	}
	sn.ID = id
	res.Snapshot = id.String()
	res.Items = len(sn.Items)
	res.Files, res.Bytes, res.AddedBytes = int64(stats.Files), int64(stats.Bytes), int64(stats.AddedBytes)
	res.Partial = sn.Partial
	res.Warnings = append(res.Warnings, w.result.Warnings...)
	for _, u := range stats.Unreadable {
		res.Warnings = append(res.Warnings, "unreadable: "+u)
	}
	if err := os.MkdirAll(filepath.Dir(cachePath), 0o700); err == nil {
		err = arch.NewCache().Save(cachePath)
		if err != nil {
			e.log().Warn("cannot save the change cache; the next backup reads every file", "job", j.Name, "error", err)
		}
	}
	return sn, nil
}

// forget applies the job's retention policy after its new snapshot: the
// snapshots a saved plan listed, exactly; otherwise what the policy decides
// now. Only the snapshot documents go; the run prunes the data afterwards.
func (e *Engine) forget(ctx context.Context, r *repo.Repository, j *config.Job, jp *JobPlan, opts ApplyOptions, res *JobResult) error {
	sns, err := JobSnapshots(ctx, r, j.Name)
	if err != nil {
		return err
	}
	res.Snapshots, res.HeldBytes = len(BackupSnapshots(sns)), -1
	var forgets []Forget
	if opts.Saved {
		if jp.Retention != nil {
			forgets = jp.Retention.Forget
		}
	} else if hasRetention(j.Policy) {
		rr, err := e.decideRetention(ctx, r, j, sns, e.now(), false)
		if err != nil {
			return err
		}
		for id, why := range rr.Reasons {
			e.log().Debug("retention", "job", j.Name, "snapshot", id[:min(8, len(id))], "decision", why)
		}
		forgets, res.HeldBytes = rr.Forget, rr.HeldAfter
	}
	for _, f := range forgets {
		id, err := repo.ParseID(f.Snapshot)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", f.Snapshot, err)
		}
		if err := r.DeleteSnapshot(ctx, id); err != nil {
			return fmt.Errorf("forget snapshot %s: %w", id.Short(), err)
		}
		e.log().Info("forgot snapshot", "job", j.Name, "snapshot", id.Short(), "time", f.Time.Format(time.RFC3339), "reason", f.Reason)
		res.Forgotten = append(res.Forgotten, f)
		res.Snapshots--
	}
	return nil
}

func tags(opts ApplyOptions) []string {
	if opts.Safety {
		return []string{SafetyTag}
	}
	return nil
}
