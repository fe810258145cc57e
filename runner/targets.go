package runner

import (
	"context"
	"sync"

	config "github.com/backup-runner/runner/hcl"
)

// targetPool shares prepared targets between the jobs of one run. A target
// is brought up (its hooks, then Prepare) by the first job that needs it
// and down after the last one is done with it, so that two jobs writing to
// one NAS never see it unmounted under them, and a VPN is not toggled per
// job.
type targetPool struct {
	e       *Engine
	dryRun  bool
	mu      sync.Mutex
	entries map[string]*poolEntry
}

type poolEntry struct {
	mu     sync.Mutex // held while the target is being brought up or down
	ts     *TargetSession
	refs   int
	failed bool // some job using it failed: its hooks come down with RUNNER_STATUS=failure
	prune  bool // some job forgot snapshots: prune before bringing it down
}

func newTargetPool(e *Engine, dryRun bool) *targetPool {
	return &targetPool{e: e, dryRun: dryRun, entries: map[string]*poolEntry{}}
}

func (p *targetPool) entry(addr string) *poolEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe := p.entries[addr]
	if pe == nil {
		pe = &poolEntry{}
		p.entries[addr] = pe
	}
	return pe
}

// acquire returns the target brought up, bringing it up if no job holds it.
// A failure is not remembered: the next job tries again.
func (p *targetPool) acquire(ctx context.Context, t *config.Instance) (*TargetSession, error) {
	pe := p.entry(t.Address)
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if pe.ts == nil {
		// A dry run does what runner plan does to read a target: its hooks
		// (a VPN, a mount script) run for real, and Prepare is read-only.
		env := map[string]string{"RUNNER_TARGET": t.Address}
		if p.dryRun {
			env["RUNNER_DRY_RUN"] = "1"
		}
		ts, err := p.e.openTarget(ctx, t, p.dryRun, false, env)
		if err != nil {
			return nil, err
		}
		note, err := p.e.checkFreeSpace(ctx, ts)
		if err != nil {
			_ = ts.Close(false)
			return nil, err
		}
		if note != "" {
			ts.notes = append(ts.notes, note)
		}
		pe.ts, pe.failed = ts, false
	}
	pe.refs++
	return pe.ts, nil
}

// markPrune notes that a job forgot snapshots on the target.
func (p *targetPool) markPrune(t *config.Instance) {
	pe := p.entry(t.Address)
	pe.mu.Lock()
	defer pe.mu.Unlock()
	pe.prune = true
}

// release gives the target back. The last holder prunes it if a job
// forgot snapshots (prune needs the repository to itself, so it waits
// until no job of the run uses it), then brings it down; it gets what the
// prune did and the errors of pruning and of bringing the target down.
func (p *targetPool) release(ctx context.Context, t *config.Instance, ok bool) (note string, errs []error) {
	pe := p.entry(t.Address)
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if !ok {
		pe.failed = true
	}
	pe.refs--
	if pe.refs > 0 || pe.ts == nil {
		return "", nil
	}
	ts := pe.ts
	pe.ts = nil
	if pe.prune && !p.dryRun {
		pe.prune = false
		var err error
		if note, err = p.e.pruneSession(ctx, ts); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ts.Close(!pe.failed); err != nil {
		errs = append(errs, err)
	}
	return note, errs
}
