package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

func init() {
	register(&command{
		name:  "snapshots",
		args:  "JOB",
		short: "List a job's snapshots",
		long: `Lists the snapshots of a job in its target's repository, oldest first: id, time,
host, role, tags (safety: taken before a restore into place; replica-state: a
replica's record of its copy), files and bytes captured, bytes new to the
repository, whether it is partial (something could not be read), and its content:
the source's one-line summary (for a WordPress site its version, address and
binlog position) or its items. -json prints everything, with the source's
metadata.`,
		run: runSnapshots,
	})
}

type snapshotRow struct {
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Host    string            `json:"host"`
	Role    string            `json:"role,omitempty"`
	Items   []string          `json:"items"`
	Files   uint64            `json:"files"`
	Bytes   uint64            `json:"bytes"`
	Added   uint64            `json:"added_bytes"`
	Partial bool              `json:"partial"`
	Tags    []string          `json:"tags,omitempty"`
	Source  map[string]string `json:"source,omitempty"`
}

func runSnapshots(ctx context.Context, g *globals, args []string) error {
	name, err := oneJobArg("snapshots", args)
	if err != nil {
		return err
	}
	l, jr, j, done, err := jobRepo(ctx, g, name, repo.LockNone, "snapshots")
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	sns, err := runner.JobSnapshots(ctx, jr.Repo, j.Name)
	if cerr := done(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rows := []snapshotRow{}
	for _, sn := range sns {
		r := snapshotRow{ID: sn.ID.String(), Time: sn.Time, Host: sn.Host, Role: sn.Role, Files: sn.Summary.Files,
			Bytes: sn.Summary.Bytes, Added: sn.Summary.AddedBytes, Partial: sn.Partial, Tags: sn.Tags, Source: sn.Source, Items: []string{}}
		for _, it := range sn.Items {
			r.Items = append(r.Items, it.Name)
		}
		rows = append(rows, r)
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tROLE\tTAGS\tFILES\tSIZE\tADDED\tPARTIAL\tCONTENT")
	for _, r := range rows {
		tags := strings.Join(r.Tags, ",")
		if tags == "" {
			tags = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.ID[:8], r.Time.Local().Format("2006-01-02 15:04:05"), r.Host, r.Role, tags,
			r.Files, policies.FormatSize(int64(r.Bytes)), policies.FormatSize(int64(r.Added)), yesNo(r.Partial), content(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "%s of job %s.\n", count(len(rows), "snapshot", "snapshots"), j.Name)
	return err
}

// content is a snapshot's CONTENT column: the source's summary, else its
// items (the first few).
func content(r snapshotRow) string {
	if s := r.Source[sdk.MetaSummary]; s != "" {
		return s
	}
	if len(r.Items) > 4 {
		return strings.Join(r.Items[:3], ", ") + fmt.Sprintf(", ... (%d items)", len(r.Items))
	}
	return strings.Join(r.Items, ", ")
}
