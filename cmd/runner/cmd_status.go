package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

func init() {
	var jobs stringList
	register(&command{
		name:  "status",
		short: "Show each job's last runs, next due time, snapshots and activity",
		long: `Shows, for every job (or those given with -job), its role, its last successful
and last failed run, the next time it is due, how many snapshots it has and the space
they hold (as of its last successful run), and whether a run is under way now. It
reads only runner's own state: no target, plugin or server is touched.

With runner { metrics_file = "..." }, apply writes the same data after every run as
Prometheus text-format metrics (for node_exporter's textfile collector).`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&jobs, "job", "show only this `job` (repeatable)")
		},
		run: func(ctx context.Context, g *globals, args []string) error {
			if len(args) > 0 {
				return usageError("status takes no arguments; choose jobs with -job NAME")
			}
			l, eng, sel, err := g.loadJobs(ctx, jobs)
			if l != nil {
				defer l.close()
			}
			if err != nil {
				return err
			}
			sts := eng.Status(sel)
			if g.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sts)
			}
			printStatus(g.stdout, sts, eng.Now())
			return nil
		},
	})
}

func printStatus(w io.Writer, sts []*runner.JobStatus, now time.Time) {
	stamp := func(t time.Time) string { return t.In(now.Location()).Format("2006-01-02 15:04") }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tROLE\tLAST SUCCESS\tLAST FAILURE\tNEXT DUE\tSNAPSHOTS\tHELD\tACTIVITY")
	for _, s := range sts {
		last, failure, next, held := "never", "-", "-", "-"
		if s.Last != nil {
			last = stamp(s.Last.End)
		}
		if s.Failure != nil {
			failure = stamp(s.Failure.End)
			if s.Failures > 0 {
				failure += fmt.Sprintf(" (%d in a row)", s.Failures)
			}
		}
		switch {
		case s.Due:
			next = "now"
		case !s.NextDue.IsZero():
			next = stamp(s.NextDue)
		case s.Reason != "":
			next = s.Reason
		}
		if s.Held >= 0 {
			held = policies.FormatSize(s.Held)
			if s.Quota > 0 {
				held += " of " + policies.FormatSize(s.Quota)
			}
		}
		activity := s.Activity
		if s.Running != nil && s.Running.PID != 0 {
			activity = fmt.Sprintf("running since %s (pid %d)", stamp(s.Running.Start), s.Running.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Job, s.Role, last, failure, next, s.Snaps, held, activity)
	}
	_ = tw.Flush()
	for _, s := range sts {
		if s.Failure != nil && s.Failures > 0 {
			fmt.Fprintf(w, "job %s last failed: %s\n", s.Job, s.Failure.Error)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "job %s: %s\n", s.Job, s.Error)
		}
	}
}
