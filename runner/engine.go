// Package runner is the engine: it turns an evaluated configuration into a
// plan (what each job would do, computed read-only) and applies it, running
// each job's hooks, target and source through their plugins, concurrently
// up to the configured limit, so that one job's failure never stops another.
package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/archiver"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// PluginClient is a launched plugin process: every plugin verb, for any of
// the block types the plugin provides (each call names its type in the
// sdk.Instance). Close stops the process.
type PluginClient interface {
	PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error)
	Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error
	Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error
	Prepare(ctx context.Context, inst sdk.Instance, readOnly bool) (sdk.Session, error)
	Up(ctx context.Context, req sdk.HookRequest) ([]string, error)
	Down(ctx context.Context, req sdk.HookRequest) ([]string, error)
	Notify(ctx context.Context, inst sdk.Instance, n sdk.Notification) error
	Close() error
}

// Launcher starts plugin processes. Each job gets its own processes, so a
// plugin that crashes fails only the job that used it.
type Launcher interface {
	Launch(ctx context.Context, kind schema.Kind, typeName string) (PluginClient, error)
}

// Engine plans and applies the jobs of one configuration.
type Engine struct {
	Config  *config.Config
	Plugins Launcher
	Log     *slog.Logger
	// Now is the engine's clock; tests replace it.
	Now func() time.Time
	// DownTimeout bounds bringing hooks and targets down after a job, even
	// when the run was interrupted.
	DownTimeout time.Duration

	live sync.Map // job name -> *archiver.Archiver of a backup under way

	restored archiver.Progress // what this engine's restores have written
}

// RestoreProgress is what the engine's restores have written so far:
// files restored and bytes (files' and streams') written or handed to a
// source.
func (e *Engine) RestoreProgress() (files, bytes uint64) {
	return e.restored.Files(), e.restored.Bytes()
}

// restoreCounter counts what a restore writes to w into p.
type restoreCounter struct {
	w io.Writer
	p *archiver.Progress
}

func (c restoreCounter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.AddBytes(n)
	return n, err
}

// Progress sums the backups under way: how many, files and bytes so far.
func (e *Engine) Progress() (jobs int, files, bytes uint64) {
	e.live.Range(func(_, v any) bool {
		st := v.(*archiver.Archiver).Stats()
		jobs++
		files += st.Files
		bytes += st.Bytes
		return true
	})
	return jobs, files, bytes
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// SelectJobs returns the jobs to consider: all, or those named.
func (e *Engine) SelectJobs(names []string) ([]*config.Job, error) {
	if len(names) == 0 {
		jobs := append([]*config.Job(nil), e.Config.Jobs...)
		sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].Name < jobs[j].Name })
		return jobs, nil
	}
	var out []*config.Job
	for _, n := range names {
		j := e.Config.Job(n)
		if j == nil {
			var known []string
			for _, k := range e.Config.Jobs {
				known = append(known, k.Name)
			}
			return nil, fmt.Errorf("no job %q in the configuration (jobs: %v)", n, known)
		}
		out = append(out, j)
	}
	return out, nil
}

// jobPlugins launches and caches the plugin processes one job uses, and
// stops them all at the end of the job.
// It is safe for concurrent use: a job starts its source's plugin while
// its target comes up.
type jobPlugins struct {
	launcher Launcher
	mu       sync.Mutex // held across a launch, so one type starts once
	clients  map[string]PluginClient
}

func (p *jobPlugins) get(ctx context.Context, kind schema.Kind, typeName string) (PluginClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := kind.String() + "." + typeName
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	c, err := p.launcher.Launch(ctx, kind, typeName)
	if err != nil {
		return nil, err
	}
	if p.clients == nil {
		p.clients = map[string]PluginClient{}
	}
	p.clients[key] = c
	return c, nil
}

func (p *jobPlugins) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		_ = c.Close()
	}
}

func instance(in *config.Instance) sdk.Instance {
	return sdk.Instance{TypeName: in.Block.TypeName, Address: in.Address, Config: in.Config}
}

// jobHooks lists the hooks wrapping a job, outermost first: the target's
// (VPN, mounts: what reaching the target needs), then the job's own.
func jobHooks(j *config.Job) []*config.Instance {
	var hooks []*config.Instance
	if j.Target != nil {
		hooks = append(hooks, j.Target.Hooks...)
	}
	return append(hooks, j.Hooks...)
}
