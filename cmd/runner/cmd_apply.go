package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/backup-runner/runner/internal/progress"

	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type applyOptions struct {
	jobs   stringList
	dryRun bool
}

func init() {
	var o applyOptions
	register(&command{
		name:  "apply",
		short: "Run the jobs: hooks, target, source capture",
		long: `Plans and runs the jobs (all, or those given with -job), at most
runner { parallel = N } at once. Each job brings up its target's hooks and its
own hooks in order, prepares its target, runs its source's capture, then brings
everything down in reverse order, whatever happened (also on SIGINT/SIGTERM).
One job's failure never stops another.

This version reads everything a capture produces but does not store it yet:
the repository that keeps snapshots is not built.

EXIT STATUS
  0  every job succeeded (or was skipped)
  1  the configuration is invalid, or runner itself failed
  3  some jobs failed (each is reported)`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&o.jobs, "job", "run only this `job` (repeatable)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "do only the read-only steps; change nothing")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runApply(ctx, g, o, args) },
	})
}

func runApply(ctx context.Context, g *globals, o applyOptions, args []string) error {
	if len(args) > 0 {
		return usageError("apply takes no arguments; choose jobs with -job NAME")
	}
	if o.dryRun && !g.json {
		fmt.Fprintln(g.stdout, "Dry run: nothing will be written, deleted or restored.")
	}
	l, eng, jobs, err := g.loadJobs(ctx, o.jobs)
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	// No estimates: they would walk every tree once more before the backup.
	plan := eng.Plan(ctx, jobs, runner.PlanOptions{})
	start := time.Now()
	line := progress.Start(g.stderr, g.progress(), 500*time.Millisecond, func() string {
		n, files, bytes := eng.Progress()
		return fmt.Sprintf("backing up: %d jobs running, %d files, %s (%s)", n, files, policies.FormatSize(int64(bytes)), progress.Rate(int64(bytes), time.Since(start)))
	})
	results := eng.Apply(ctx, plan, jobs, runner.ApplyOptions{DryRun: o.dryRun})
	line.Stop()
	if g.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"dry_run": o.dryRun, "jobs": results}); err != nil {
			return err
		}
	} else {
		printResults(g.stdout, results)
	}
	for _, r := range results {
		if r.Status == runner.StatusFailure {
			return silentExit(exitJobsFailed)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	return nil
}

func printResults(w io.Writer, results []*runner.JobResult) {
	ok, failed, skipped := 0, 0, 0
	for _, r := range results {
		switch r.Status {
		case runner.StatusSuccess:
			ok++
			partial := ""
			if r.Partial {
				partial = " (PARTIAL: some files could not be read)"
			}
			fmt.Fprintf(w, "job %s: ok, %s, %s, %s in %s%s\n", r.Job, count(r.Items, "item", "items"), count(r.Files, "file", "files"), policies.FormatSize(r.Bytes), r.Duration.Round(1e6), partial)
		case runner.StatusSkipped:
			skipped++
			fmt.Fprintf(w, "job %s: skipped: %s\n", r.Job, r.Reason)
		default:
			failed++
			fmt.Fprintf(w, "job %s: FAILED: %s\n", r.Job, r.Error)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "    warning: %s\n", warn)
		}
	}
	fmt.Fprintf(w, "Apply: %d ok, %d failed, %d skipped.\n", ok, failed, skipped)
}
