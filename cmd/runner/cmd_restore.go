package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type restoreOptions struct {
	snapshot   string
	at         string
	to         string
	include    stringList
	toDatabase string
	force      bool
	dryRun     bool
	options    stringList
}

func init() {
	var o restoreOptions
	register(&command{
		name:  "restore",
		args:  "JOB",
		short: "Restore a job's snapshot into a directory, or through its source",
		long: `Restores a snapshot of a job (the newest; or --snapshot ID; or the newest at or
before --at).

With --to DIR: into the directory, each tree item as the directory or file it
captured (DIR/<name>), with modes, owners (as root), times, symlinks, hardlinks and
extended attributes; each stream item (a table's dump, for instance) as a file named
after it. Every chunk is verified against its hash before it is written; a damaged
one fails the restore loudly, naming the file. Files already in DIR that the
snapshot does not have are left alone.

Without --to: through the job's source, which puts the data back where it belongs.
For a mysql source that is the database server: into the databases the snapshot
holds, or with --to-database NAME into another one. Tables are loaded into a
staging database, verified (row counts and checksums recorded at dump time), then
swapped in, so a failed restore leaves the existing data as it was; replacing
tables that exist needs --force. Restoring files into place is not supported yet.

--at takes an age (40d, 12h), a date (2026-10-01: the end of that day), a local time
(2026-10-01T03:00) or RFC 3339.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.snapshot, "snapshot", "", "restore the snapshot with this `id` (or unique prefix)")
			fs.StringVar(&o.at, "at", "", "restore the newest snapshot at or before this `time`")
			fs.StringVar(&o.to, "to", "", "restore into this `directory`")
			fs.Var(&o.include, "include", "with --to: restore only this `path`, as it appears under --to, e.g. data/a.txt for an item captured from /srv/data (repeatable)")
			fs.StringVar(&o.toDatabase, "to-database", "", "through a database source: load into this `database` instead of the original")
			fs.BoolVar(&o.force, "force", false, "through the source: replace existing data (tables of the same names)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "through the source: connect and check, change nothing")
			fs.Var(&o.options, "option", "through the source: a source-specific restore option `KEY=VALUE` (repeatable; see the source's documentation)")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runRestore(ctx, g, o, args) },
	})
}

func runRestore(ctx context.Context, g *globals, o restoreOptions, args []string) error {
	name, err := oneJobArg("restore", args)
	if err != nil {
		return err
	}
	throughSource := o.to == ""
	if !throughSource && (o.toDatabase != "" || o.force || o.dryRun || len(o.options) > 0) {
		return usageError("--to-database, --force, --dry-run and --option restore through the source; they do not go with --to DIR")
	}
	if throughSource && len(o.include) > 0 {
		return usageError("--include needs --to DIR")
	}
	if o.snapshot != "" && o.at != "" {
		return usageError("give --snapshot or --at, not both")
	}
	srcOpts := map[string]string{}
	for _, kv := range o.options {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError("--option wants KEY=VALUE, got %q", kv)
		}
		srcOpts[k] = v
	}
	if o.toDatabase != "" {
		srcOpts["database"] = o.toDatabase
	}
	if o.force {
		srcOpts["force"] = "true"
	}
	var at time.Time
	if o.at != "" {
		if at, err = runner.ParseAt(o.at, g.now()); err != nil {
			return usageError("%v", err)
		}
	}
	l, jr, j, done, err := jobRepo(ctx, g, name, repo.LockShared, "restore")
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	eng := l.engine(g)
	var res *runner.RestoreResult
	sn, err := runner.SelectSnapshot(ctx, jr.Repo, j.Name, o.snapshot, at)
	if err == nil {
		if throughSource {
			err = eng.RestoreThroughSource(ctx, jr.Repo, j, sn, runner.SourceRestoreOptions{Options: srcOpts, DryRun: o.dryRun})
		} else {
			res, err = eng.RestoreSnapshot(ctx, jr.Repo, sn, runner.RestoreOptions{To: o.to, Include: o.include})
		}
	}
	if cerr := done(err == nil); err == nil {
		err = cerr
	}
	if err == nil && !o.dryRun {
		what := fmt.Sprintf("restored snapshot %s of job %s (%s)", sn.ID.Short(), j.Name, sn.Time.Format(time.RFC3339))
		if o.to != "" {
			what += " into " + o.to
		} else if o.toDatabase != "" {
			what += " into database " + o.toDatabase
		}
		eng.Notify(ctx, j, sdk.Notification{Event: runner.EventRestore, Subject: what, Body: what + ".\n",
			Fields: map[string]string{"snapshot": sn.ID.String(), "to": o.to, "to_database": o.toDatabase}})
	}
	if err != nil {
		return err
	}
	if throughSource {
		verb := "Restored"
		if o.dryRun {
			verb = "Checked (dry run, nothing changed) the restore of"
		}
		where := "through " + j.Source.Address
		if o.toDatabase != "" {
			where += " into database " + o.toDatabase
		}
		if g.json {
			return json.NewEncoder(g.stdout).Encode(map[string]any{"snapshot": sn.ID.String(), "time": sn.Time, "source": j.Source.Address, "options": srcOpts, "dry_run": o.dryRun})
		}
		_, err = fmt.Fprintf(g.stdout, "%s snapshot %s of %s (%s) %s.\n", verb, sn.ID.Short(), j.Name, sn.Time.Format(time.RFC3339), where)
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(res)
	}
	_, err = fmt.Fprintf(g.stdout, "Restored snapshot %s of %s (%s) into %s: %s, %s, %s, %s.\n",
		res.Snapshot[:8], j.Name, res.Time, res.To, count(res.Files, "file", "files"), count(res.Dirs, "directory", "directories"),
		count(res.Streams, "stream", "streams"), policies.FormatSize(int64(res.Bytes)))
	return err
}
