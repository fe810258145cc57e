package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/policies"
	"github.com/backup-runner/runner/runner"
)

type restoreOptions struct {
	snapshot string
	at       string
	to       string
	include  stringList
}

func init() {
	var o restoreOptions
	register(&command{
		name:  "restore",
		args:  "JOB",
		short: "Restore a job's snapshot into a directory",
		long: `Restores a snapshot of a job (the newest; or --snapshot ID; or the newest at or
before --at) into the directory --to: each tree item as the directory or file it
captured (DIR/<name>), with modes, owners (as root), times, symlinks, hardlinks and
extended attributes; each stream item as a file named after it. Every chunk is
verified against its hash before it is written; a damaged one fails the restore
loudly, naming the file. Files already in DIR that the snapshot does not have are
left alone. Restoring into place (over the live data) is not supported yet.

--at takes an age (40d, 12h), a date (2026-10-01: the end of that day), a local time
(2026-10-01T03:00) or RFC 3339.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.snapshot, "snapshot", "", "restore the snapshot with this `id` (or unique prefix)")
			fs.StringVar(&o.at, "at", "", "restore the newest snapshot at or before this `time`")
			fs.StringVar(&o.to, "to", "", "restore into this `directory` (required)")
			fs.Var(&o.include, "include", "restore only this `path`, as it appears under --to, e.g. data/a.txt for an item captured from /srv/data (repeatable)")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runRestore(ctx, g, o, args) },
	})
}

func runRestore(ctx context.Context, g *globals, o restoreOptions, args []string) error {
	name, err := oneJobArg("restore", args)
	if err != nil {
		return err
	}
	if o.to == "" {
		return usageError("restore needs --to DIR (restoring into place is not supported yet)")
	}
	if o.snapshot != "" && o.at != "" {
		return usageError("give --snapshot or --at, not both")
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
	var res *runner.RestoreResult
	sn, err := runner.SelectSnapshot(ctx, jr.Repo, j.Name, o.snapshot, at)
	if err == nil {
		res, err = l.engine(g).RestoreSnapshot(ctx, jr.Repo, sn, runner.RestoreOptions{To: o.to, Include: o.include})
	}
	if cerr := done(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
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
