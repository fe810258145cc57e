package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/logging"
	"github.com/backup-runner/runner/internal/progress"
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
	sparse     bool
	toDatabase string
	force      bool
	dryRun     bool
	options    stringList
	noSafety   bool
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
tables that exist needs --force. With --to DIR and --to-database NAME together, a
source that has both files and a database (wordpress) restores beside the live
site: files under DIR, the database into NAME.

A restore into place first takes a safety snapshot of the current state (tagged
"safety"), so it can be undone with runner restore JOB --snapshot ID; it holds the
job's lock, so no backup runs meanwhile. Overwriting a job that is primary on this
server needs --force, or typing the job's name when asked on a terminal. The source
restores files the plugin cannot restore in place (the files source) only with --to.

--at takes an age (40d, 12h), a date (2026-10-01: the end of that day), a local time
(2026-10-01T03:00) or RFC 3339.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.snapshot, "snapshot", "", "restore the snapshot with this `id` (or unique prefix)")
			fs.StringVar(&o.at, "at", "", "restore the newest snapshot at or before this `time`")
			fs.StringVar(&o.to, "to", "", "restore into this `directory`")
			fs.Var(&o.include, "include", "with --to: restore only this `path`, as it appears under --to, e.g. data/a.txt for an item captured from /srv/data (repeatable)")
			fs.BoolVar(&o.sparse, "sparse", false, "with --to: leave runs of zero bytes in files as holes instead of writing them (disk images, sparse database files); not for files that must stay fully allocated, such as swap files")
			fs.StringVar(&o.toDatabase, "to-database", "", "through a database source: load into this `database` instead of the original")
			fs.BoolVar(&o.force, "force", false, "through the source: replace existing data (tables of the same names)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "through the source: connect and check, change nothing")
			fs.Var(&o.options, "option", "through the source: a source-specific restore option `KEY=VALUE` (repeatable; see the source's documentation)")
			fs.BoolVar(&o.noSafety, "no-safety-snapshot", false, "restore into place without taking a safety snapshot first")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runRestore(ctx, g, o, args) },
	})
}

func runRestore(ctx context.Context, g *globals, o restoreOptions, args []string) error {
	name, err := oneJobArg("restore", args)
	if err != nil {
		return err
	}
	// Through the source: without --to, or with --to and --to-database (a
	// source with files and a database restores beside the live data).
	throughSource := o.to == "" || o.toDatabase != ""
	if !throughSource && (o.force || o.dryRun || len(o.options) > 0 || o.noSafety) {
		return usageError("--force, --dry-run, --option and --no-safety-snapshot restore through the source; with --to DIR alone the files are written by runner itself")
	}
	if throughSource && len(o.include) > 0 {
		return usageError("--include needs --to DIR (without --to-database)")
	}
	if throughSource && o.sparse {
		return usageError("--sparse needs --to DIR (without --to-database): restores through the source write the files themselves")
	}
	if o.snapshot != "" && o.at != "" {
		return usageError("give --snapshot or --at, not both")
	}
	inPlace := o.to == "" && o.toDatabase == ""
	if o.to != "" {
		if o.to, err = filepath.Abs(o.to); err != nil {
			return usageError("--to: %v", err)
		}
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
	l, eng, jobs, err := g.loadJobs(ctx, []string{name})
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	j := jobs[0]
	if throughSource && !o.dryRun {
		// No backup of the job may run while its data is being replaced.
		lock, err := eng.LockJob(ctx, j.Name, 0)
		if err != nil {
			return fmt.Errorf("restore: %w; try again when it is done", err)
		}
		defer func() { _ = lock.Unlock() }()
	}
	jr, err := eng.OpenJobRepository(ctx, j, repo.LockShared, "restore")
	if err != nil {
		return err
	}
	var res *runner.RestoreResult
	var safety string
	// The dry run that says what will change and the restore stage the
	// snapshot's trees once, for both.
	staging := eng.NewStaging()
	defer func() { _ = staging.Close() }()
	sn, err := runner.SelectSnapshot(ctx, jr.Repo, j.Name, o.snapshot, at)
	if err == nil && inPlace && !o.dryRun {
		fmt.Fprintf(g.stdout, "Restoring snapshot %s of %s (%s, %s) into place: this replaces the live data of %s.\n",
			sn.ID.Short(), j.Name, sn.Time.Format(time.RFC3339), describeItems(sn), j.Source.Address)
		// Say what will change before changing it: the source compares
		// the snapshot with the live data in a dry run.
		// The dry run asks what replacing would change; whether to replace
		// is decided below (--force, the confirmation).
		dryOpts := map[string]string{"force": "true"}
		for k, v := range srcOpts {
			dryOpts[k] = v
		}
		var notes []string
		restoring(g, eng, func() {
			notes, err = eng.RestoreThroughSource(ctx, jr.Repo, j, sn, runner.SourceRestoreOptions{Options: dryOpts, DryRun: true, Staging: staging})
		})
		if err == nil {
			for _, n := range notes {
				fmt.Fprintf(g.stdout, "  %s\n", n)
			}
			err = confirmInPlace(g, j, o.force)
		}
		if err == nil && !o.noSafety {
			var sres *runner.JobResult
			if sres, err = eng.SafetySnapshot(ctx, j); err == nil {
				safety = sres.Snapshot
				fmt.Fprintf(g.stdout, "Safety snapshot %s taken of the current state: undo this restore with runner restore %s --snapshot %s --force\n",
					safety[:8], shellQuote(j.Name), safety[:8])
			}
		}
	}
	var notes []string
	if err == nil {
		restoring(g, eng, func() {
			if throughSource {
				notes, err = eng.RestoreThroughSource(ctx, jr.Repo, j, sn, runner.SourceRestoreOptions{Options: srcOpts, Destination: o.to, DryRun: o.dryRun, Staging: staging})
			} else {
				res, err = eng.RestoreSnapshot(ctx, jr.Repo, sn, runner.RestoreOptions{To: o.to, Include: o.include, Sparse: o.sparse})
			}
		})
	}
	if cerr := jr.Close(err == nil); err == nil {
		err = cerr
	}
	if err != nil && safety != "" {
		err = fmt.Errorf("%w (the safety snapshot %s holds the state from before)", err, safety[:8])
	}
	if err == nil && !o.dryRun {
		what := fmt.Sprintf("restored snapshot %s of job %s (%s)", sn.ID.Short(), j.Name, sn.Time.Format(time.RFC3339))
		if o.to != "" {
			what += " into " + o.to
		} else if o.toDatabase != "" {
			what += " into database " + o.toDatabase
		}
		eng.Notify(ctx, j, sdk.Notification{Event: sdk.EventRestore, Subject: what, Body: what + ".\n",
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
		if o.to != "" {
			where += " into " + o.to
		}
		if o.toDatabase != "" {
			where += " into database " + o.toDatabase
		}
		if g.json {
			return json.NewEncoder(g.stdout).Encode(map[string]any{"snapshot": sn.ID.String(), "time": sn.Time, "source": j.Source.Address,
				"options": srcOpts, "dry_run": o.dryRun, "safety_snapshot": safety, "to": o.to, "notes": notes})
		}
		for _, n := range notes {
			fmt.Fprintf(g.stdout, "  %s\n", n)
		}
		_, err = fmt.Fprintf(g.stdout, "%s snapshot %s of %s (%s) %s.\n", verb, sn.ID.Short(), j.Name, sn.Time.Format(time.RFC3339), where)
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(res)
	}
	holes := ""
	if o.sparse {
		holes = fmt.Sprintf(" (%s of it left as holes)", policies.FormatSize(int64(res.Holes)))
	}
	_, err = fmt.Fprintf(g.stdout, "Restored snapshot %s of %s (%s) into %s: %s, %s, %s, %s%s.\n",
		res.Snapshot[:8], j.Name, res.Time, res.To, count(res.Files, "file", "files"), count(res.Dirs, "directory", "directories"),
		count(res.Streams, "stream", "streams"), policies.FormatSize(int64(res.Bytes)), holes)
	return err
}

// restoring runs f with a progress line on a terminal: the files and
// bytes the engine's restores write meanwhile. The line is gone when f
// returns, before anything else is printed or asked.
func restoring(g *globals, eng *runner.Engine, f func()) {
	start := time.Now()
	files0, bytes0 := eng.RestoreProgress()
	line := progress.Start(g.stderr, g.progress(), 500*time.Millisecond, func() string {
		files, bytes := eng.RestoreProgress()
		n := int64(bytes - bytes0)
		return fmt.Sprintf("restoring: %d files, %s (%s)", files-files0, policies.FormatSize(n), progress.Rate(n, time.Since(start)))
	})
	f()
	line.Stop()
}

// describeItems says what a snapshot holds, for the line printed before a
// restore into place.
func describeItems(sn *repo.Snapshot) string {
	var trees, streams []string
	for _, it := range sn.Items {
		if it.Kind == repo.ItemTree {
			trees = append(trees, it.Name)
		} else {
			streams = append(streams, it.Name)
		}
	}
	var parts []string
	if len(trees) > 0 {
		parts = append(parts, "tree items "+strings.Join(trees, ", "))
	}
	if n := len(streams); n > 0 {
		if n <= 4 {
			parts = append(parts, "streams "+strings.Join(streams, ", "))
		} else {
			parts = append(parts, fmt.Sprintf("%d streams (%s, ...)", n, strings.Join(streams[:3], ", ")))
		}
	}
	if len(parts) == 0 {
		return "no items"
	}
	return strings.Join(parts, "; ")
}

// confirmInPlace guards against overwriting a live primary by accident:
// --force, or the operator types the job's name on a terminal.
func confirmInPlace(g *globals, j *config.Job, force bool) error {
	if force || j.Role != config.RolePrimary {
		return nil
	}
	if !logging.IsTerminal(os.Stdin) || !logging.IsTerminal(g.stdout) {
		return fmt.Errorf("job %s is primary on this server: restoring into place overwrites its live data; give --force (or run interactively and confirm)", j.Name)
	}
	fmt.Fprintf(g.stdout, "Job %s is primary on this server. Type its name to go on: ", j.Name)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != j.Name {
		return fmt.Errorf("not confirmed: nothing was restored")
	}
	return nil
}

// shellQuote quotes a job name for a command line an operator copies.
func shellQuote(s string) string {
	if strings.ContainsAny(s, "[]\"' $*?") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
