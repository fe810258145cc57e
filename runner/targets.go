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
		ts, err := p.e.openTarget(ctx, t, p.dryRun, p.dryRun, map[string]string{"RUNNER_TARGET": t.Address})
		if err != nil {
			return nil, err
		}
		pe.ts, pe.failed = ts, false
	}
	pe.refs++
	return pe.ts, nil
}

// release gives the target back; the last holder brings it down and gets
// the error of doing so, if any.
func (p *targetPool) release(t *config.Instance, ok bool) error {
	pe := p.entry(t.Address)
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if !ok {
		pe.failed = true
	}
	pe.refs--
	if pe.refs > 0 || pe.ts == nil {
		return nil
	}
	ts := pe.ts
	pe.ts = nil
	return ts.Close(!pe.failed)
}
