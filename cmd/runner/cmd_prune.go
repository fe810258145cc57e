package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/backup-runner/runner/internal/progress"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/policies"
)

type pruneOptions struct {
	dryRun      bool
	repackBelow float64
}

func init() {
	var o pruneOptions
	register(&command{
		name:  "prune",
		args:  "JOB",
		short: "Free the space no snapshot uses in a job's repository",
		long: `Removes data that no snapshot in the repository on the job's target references
(the repository may hold other jobs' snapshots: they are kept), rewriting packs
whose live part is below --repack-below. It takes the repository's exclusive lock
and works in an order that is safe if it is interrupted at any point.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&o.dryRun, "dry-run", false, "only say what would be removed")
			fs.Float64Var(&o.repackBelow, "repack-below", repo.DefaultRepackBelow, "rewrite packs whose live `fraction` is below this")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runPrune(ctx, g, o, args) },
	})
}

func runPrune(ctx context.Context, g *globals, o pruneOptions, args []string) error {
	name, err := oneJobArg("prune", args)
	if err != nil {
		return err
	}
	lock := repo.LockExclusive
	if o.dryRun {
		lock = repo.LockShared
	}
	l, jr, _, done, err := jobRepo(ctx, g, name, lock, "prune")
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	var status atomic.Value // the progress line's text
	status.Store("pruning: reading the index")
	line := progress.Start(g.stderr, g.progress(), 500*time.Millisecond, func() string { return status.Load().(string) })
	st, err := jr.Repo.Prune(ctx, repo.PruneOptions{RepackBelow: o.repackBelow, DryRun: o.dryRun,
		Progress: func(phase repo.PrunePhase, done, total int) {
			switch phase {
			case repo.PruneMarking:
				status.Store("pruning: finding the data the snapshots use")
			case repo.PruneRepacking:
				status.Store(fmt.Sprintf("pruning: %d of %d packs rewritten", done, total))
			case repo.PruneDeleting:
				status.Store(fmt.Sprintf("pruning: %d of %d packs deleted", done, total))
			}
		}})
	line.Stop()
	if cerr := done(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(st)
	}
	verb := "Removed"
	if o.dryRun {
		verb = "Would remove"
	}
	_, err = fmt.Fprintf(g.stdout, "%s %s: %d packs deleted, %d repacked (%s copied); %d packs kept, %d snapshots.\n",
		verb, policies.FormatSize(st.BytesDeleted), st.PacksDeleted, st.PacksRepacked, policies.FormatSize(st.BytesRepacked), st.PacksKept, st.Snapshots)
	return err
}
