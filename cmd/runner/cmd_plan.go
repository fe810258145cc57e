package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type planOptions struct {
	jobs             stringList
	detailedExitCode bool
	out              string
	force            bool
}

func init() {
	var o planOptions
	register(&command{
		name:  "plan",
		short: "Show what a run would do, changing nothing",
		long: `Evaluates the configuration and shows, for every job, what runner apply would
do now: whether the job is due and why (its policy's schedule, catch_up and quiet
windows, from the last successful run), and for a due job what its source would
capture (estimated), the target's free space, and which snapshots retention would
forget afterwards (with the space each frees and the rule). Nothing is changed:
each due job's target is brought up read-only (its hooks included) and down again.

-out FILE saves the plan; runner apply FILE then does exactly that, and refuses if
the configuration, a job's state or its snapshots changed in between.

EXIT STATUS
  0  success (with -detailed-exitcode: success and nothing to do)
  1  error: the configuration is invalid or a job could not be planned
  2  with -detailed-exitcode: success, and a run would do something`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&o.jobs, "job", "plan only this `job` (repeatable; site[\"blog\"], site[blog] or site.blog)")
			fs.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "exit 2 when there is something to do")
			fs.StringVar(&o.out, "out", "", "save the plan to `file` for runner apply FILE")
			fs.BoolVar(&o.force, "force", false, "plan every enabled job as due, whatever its schedule")
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
	plan := eng.Plan(ctx, jobs, runner.PlanOptions{Full: true, Force: o.force})
	plan.ConfigHash = g.configHash(l)
	if o.out != "" {
		b, err := json.MarshalIndent(plan, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("save the plan: %w", err)
		}
	}
	if g.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return err
		}
	} else {
		printPlan(g.stdout, plan, eng.Now())
		if o.out != "" {
			fmt.Fprintf(g.stdout, "Saved the plan to %s: run it with runner apply %s\n", o.out, o.out)
		}
	}
	if plan.Errors() > 0 {
		return silentExit(exitError)
	}
	if o.detailedExitCode && plan.Changes() {
		return silentExit(exitChanges)
	}
	return nil
}

// configHash fingerprints what the configuration was made from: every
// configuration file, the variables given on the command line and in
// var files, and the environment variables that change evaluation.
func (g *globals) configHash(l *loaded) string {
	h := sha256.New()
	files := l.mod.Files()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file %q %d\n", n, len(files[n].Bytes))
		h.Write(files[n].Bytes)
	}
	for _, v := range g.vars {
		fmt.Fprintf(h, "var %q\n", v)
	}
	for _, f := range g.varFiles {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(h, "var-file %q %d\n", f, len(b))
		h.Write(b)
	}
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		if strings.HasPrefix(kv, config.VarEnvPrefix) || strings.HasPrefix(kv, config.HostnameEnv+"=") {
			fmt.Fprintf(h, "env %q\n", kv)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func printPlan(w io.Writer, p *runner.Plan, now time.Time) {
	captures, forgets := 0, 0
	var frees int64
	stamp := func(t time.Time) string { return t.In(now.Location()).Format("2006-01-02 15:04") }
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
		if j.LastSuccess != nil {
			fmt.Fprintf(w, "  last success %s", stamp(j.LastSuccess.End))
			if j.LastSuccess.Snapshot != "" {
				fmt.Fprintf(w, " (snapshot %s)", j.LastSuccess.Snapshot[:8])
			}
			fmt.Fprintln(w)
		}
		if f := j.LastFailure; f != nil && (j.LastSuccess == nil || f.End.After(j.LastSuccess.End)) {
			fmt.Fprintf(w, "  last failure %s: %s\n", stamp(f.End), f.Error)
		}
		if j.RoleChange != "" {
			fmt.Fprintf(w, "  ! role change: %s\n", j.RoleChange)
		}
		switch j.Action {
		case runner.ActionApply:
			captures++
			fmt.Fprintf(w, "  %s\n", j.Reason)
			if a := j.Apply; a != nil {
				fmt.Fprintf(w, "  + apply snapshot %s of %s (taken on %s) into place, after checking that this replica's copy is unchanged\n", a.Snapshot[:8], stamp(a.Time), a.Host)
			} else {
				fmt.Fprintf(w, "  + apply the newest snapshot of the job, if this replica does not have it yet\n")
			}
		case runner.ActionCapture:
			captures++
			fmt.Fprintf(w, "  %s\n", j.Reason)
			if j.Interrupted != nil {
				fmt.Fprintf(w, "  resumes the run interrupted at %s (pid %d)\n", stamp(j.Interrupted.Start), j.Interrupted.PID)
			}
			var files, bytes int64
			for _, it := range j.Items {
				files += it.Files
				bytes += it.Bytes
			}
			kind := "capture"
			if j.Full {
				kind = "capture (full: every file read again, " + j.FullReason + ")"
			}
			fmt.Fprintf(w, "  + %s %s: %s, %s (estimate)\n", kind, count(len(j.Items), "item", "items"), count(files, "file", "files"), policies.FormatSize(bytes))
			for _, it := range j.Items {
				detail := ""
				if it.Detail != "" {
					detail = " — " + it.Detail
				}
				if it.Kind == "stream" {
					fmt.Fprintf(w, "      %s %s: %s%s\n", it.Kind, it.Name, policies.FormatSize(it.Bytes), detail)
					continue
				}
				fmt.Fprintf(w, "      %s %s: %s, %s%s\n", it.Kind, it.Name, count(it.Files, "file", "files"), policies.FormatSize(it.Bytes), detail)
			}
			if j.FreeBytes >= 0 {
				fmt.Fprintf(w, "  target free space %s; %s of this job there\n", policies.FormatSize(j.FreeBytes), count(j.Snapshots, "snapshot", "snapshots"))
			}
			if r := j.Retention; r != nil {
				for _, f := range r.Forget {
					forgets++
					frees += f.Frees
					fmt.Fprintf(w, "  - forget %s from %s, frees %s: %s\n", f.Snapshot[:8], stamp(f.Time), policies.FormatSize(f.Frees), f.Reason)
				}
				if len(r.Forget) > 0 {
					fmt.Fprintf(w, "  - prune %s after the run\n", j.Target)
				}
				if r.Held >= 0 && j.Snapshots > 0 {
					fmt.Fprintf(w, "  space held by the job: %s, %s after forgetting (before this run's snapshot)\n", policies.FormatSize(r.Held), policies.FormatSize(r.HeldAfter))
				}
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
	forget := ""
	if forgets > 0 {
		forget = fmt.Sprintf(", %s to forget (frees %s)", count(forgets, "snapshot", "snapshots"), policies.FormatSize(frees))
	}
	fmt.Fprintf(w, "Plan: %s, %d to capture or apply%s, %d not due or skipped, %s.\n", count(len(p.Jobs), "job", "jobs"), captures, forget,
		len(p.Jobs)-captures-p.Errors(), count(p.Errors(), "error", "errors"))
}
