package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type planOptions struct {
	jobs             stringList
	detailedExitCode bool
}

func init() {
	var o planOptions
	register(&command{
		name:  "plan",
		short: "Show what a run would do, changing nothing",
		long: `Evaluates the configuration and asks each job's plugins, read-only, what a run
would do: for every job its role, source, target, policy and hooks, and what the
source would capture (items, files and bytes, estimated).

EXIT STATUS
  0  success (with -detailed-exitcode: success and nothing to do)
  1  error: the configuration is invalid or a job could not be planned
  2  with -detailed-exitcode: success, and a run would do something`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&o.jobs, "job", "plan only this `job` (repeatable; site[\"blog\"], site[blog] or site.blog)")
			fs.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "exit 2 when there is something to do")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runPlan(ctx, g, o, args) },
	})
}

func runPlan(ctx context.Context, g *globals, o planOptions, args []string) error {
	if len(args) > 0 {
		return usageError("plan takes no arguments; choose jobs with -job NAME")
	}
	l, eng, jobs, err := g.loadJobs(ctx, o.jobs)
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	plan := eng.Plan(ctx, jobs, runner.PlanOptions{Estimate: true})
	if g.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return err
		}
	} else {
		printPlan(g.stdout, plan)
	}
	if plan.Errors() > 0 {
		return silentExit(exitError)
	}
	if o.detailedExitCode && plan.Changes() {
		return silentExit(exitChanges)
	}
	return nil
}

func printPlan(w io.Writer, p *runner.Plan) {
	captures := 0
	for _, j := range p.Jobs {
		fmt.Fprintf(w, "job %s (%s)\n", j.Job, j.Role)
		fmt.Fprintf(w, "  source  %s\n  target  %s\n", j.Source, j.Target)
		if j.Policy != "" {
			sched := j.Schedule
			if sched == "" {
				sched = "no schedule"
			}
			fmt.Fprintf(w, "  policy  %s (%s)\n", j.Policy, sched)
		}
		if len(j.Hooks) > 0 {
			fmt.Fprintf(w, "  hooks   %s\n", strings.Join(j.Hooks, ", "))
		}
		switch j.Action {
		case runner.ActionCapture:
			captures++
			var files, bytes int64
			for _, it := range j.Items {
				files += it.Files
				bytes += it.Bytes
			}
			fmt.Fprintf(w, "  + capture %s: %s, %s (estimate)\n", count(len(j.Items), "item", "items"), count(files, "file", "files"), policies.FormatSize(bytes))
			for _, it := range j.Items {
				detail := ""
				if it.Detail != "" {
					detail = " — " + it.Detail
				}
				fmt.Fprintf(w, "      %s %s: %s, %s%s\n", it.Kind, it.Name, count(it.Files, "file", "files"), policies.FormatSize(it.Bytes), detail)
			}
		case runner.ActionSkip:
			fmt.Fprintf(w, "  = skip: %s\n", j.Reason)
		case runner.ActionError:
			fmt.Fprintf(w, "  ! error: %s\n", j.Error)
		}
		for _, n := range j.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Plan: %s, %d to capture, %d skipped, %s.\n", count(len(p.Jobs), "job", "jobs"), captures, len(p.Jobs)-captures-p.Errors(), count(p.Errors(), "error", "errors"))
}
