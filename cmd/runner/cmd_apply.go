package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/backup-runner/runner/internal/progress"

	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type applyOptions struct {
	jobs     stringList
	dryRun   bool
	force    bool
	lockWait time.Duration
}

func init() {
	var o applyOptions
	register(&command{
		name:  "apply",
		args:  "[PLANFILE]",
		short: "Run the jobs that are due: hooks, target, capture, retention",
		long: `Runs the jobs that are due now (all, or those given with -job), at most
runner { parallel = N } at once: what cron or a systemd timer calls, every few
minutes or hourly. A job is due when its policy's schedule says so, counted from
its last successful run (a failed run is retried at the next call, within the
catch_up window); nothing starts inside a quiet window.

Each job takes its lock (a second run of the same job is skipped, or waits with
-wait), brings up its target's hooks and its own in order, prepares its target,
captures its source into the repository, forgets what its retention policy no
longer keeps, then brings everything down in reverse order, whatever happened
(also on SIGINT/SIGTERM). The last job on a target that forgot snapshots prunes
it. One job's failure never stops another. A run that was killed is resumed by
the next apply, reusing the data it had stored.

With PLANFILE (from runner plan -out), applies exactly that plan, and refuses it
if the configuration, a job's state or its snapshots changed since.

--dry-run does the read-only steps only (hooks and mounts come up, plugins say
what they would do, sources are read) and writes, forgets and deletes nothing.

EXIT STATUS
  0  every job succeeded (or was not due, or skipped)
  1  the configuration is invalid, the plan file is stale, or runner itself failed
  3  some jobs failed (each is reported)`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&o.jobs, "job", "run only this `job` (repeatable)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "do only the read-only steps; change nothing")
			fs.BoolVar(&o.force, "force", false, "run the jobs even if they are not due; a replica also overwrites a copy that changed since its last apply (kept in a safety snapshot)")
			fs.DurationVar(&o.lockWait, "wait", 0, "wait up to this `duration` for a run of the same job to end, instead of skipping it")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runApply(ctx, g, o, args) },
	})
}

func runApply(ctx context.Context, g *globals, o applyOptions, args []string) error {
	if len(args) > 1 {
		return usageError("apply takes at most one argument, a plan file; choose jobs with -job NAME")
	}
	var saved *runner.Plan
	if len(args) == 1 {
		if len(o.jobs) > 0 || o.force {
			return usageError("a plan file already says which jobs run: -job and -force do not go with it")
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			return fmt.Errorf("read the plan: %w", err)
		}
		saved = &runner.Plan{}
		if err := json.Unmarshal(b, saved); err != nil {
			return fmt.Errorf("read the plan %s: not a plan file (%v)", args[0], err)
		}
		if saved.Version != runner.PlanVersion || !saved.Full {
			return fmt.Errorf("%s is not a plan saved by runner plan -out of this version (format %d)", args[0], saved.Version)
		}
		for _, jp := range saved.Jobs {
			o.jobs = append(o.jobs, jp.Job)
		}
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
	plan := saved
	if saved != nil {
		if h := g.configHash(l); h != saved.ConfigHash {
			return fmt.Errorf("the plan %s is stale: the configuration (its files or variables) changed since it was made; make a new plan with runner plan -out", args[0])
		}
		if err := eng.CheckSavedPlan(saved); err != nil {
			return fmt.Errorf("the plan %s is stale: %w; make a new plan with runner plan -out", args[0], err)
		}
	} else {
		// No estimates nor target reads: a cron poll with nothing due must
		// touch no target and start no plugin.
		plan = eng.Plan(ctx, jobs, runner.PlanOptions{Force: o.force})
	}
	start := time.Now()
	line := progress.Start(g.stderr, g.progress(), 500*time.Millisecond, func() string {
		n, files, bytes := eng.Progress()
		return fmt.Sprintf("backing up: %d jobs running, %d files, %s (%s)", n, files, policies.FormatSize(int64(bytes)), progress.Rate(int64(bytes), time.Since(start)))
	})
	results := eng.Apply(ctx, plan, jobs, runner.ApplyOptions{DryRun: o.dryRun, Saved: saved != nil, LockWait: o.lockWait})
	line.Stop()
	if !o.dryRun {
		if err := eng.WriteMetrics(); err != nil {
			g.log.Error("cannot write the metrics file", "error", err)
		}
	}
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
			snap := ""
			if r.Snapshot != "" {
				snap = "snapshot " + r.Snapshot[:8] + ", "
			}
			full := ""
			if r.Full {
				full = " (full)"
			}
			fmt.Fprintf(w, "job %s: ok%s, %s%s, %s, %s (%s new) in %s%s\n", r.Job, full, snap, count(r.Items, "item", "items"), count(r.Files, "file", "files"),
				policies.FormatSize(r.Bytes), policies.FormatSize(r.AddedBytes), r.Duration.Round(1e6), partial)
			for _, f := range r.Forgotten {
				fmt.Fprintf(w, "    forgot %s: %s\n", f.Snapshot[:8], f.Reason)
			}
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
