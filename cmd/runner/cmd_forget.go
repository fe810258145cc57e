package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/backup-runner/runner/internal/repo"
)

func init() {
	register(&command{
		name:  "forget",
		args:  "JOB SNAPSHOT...",
		short: "Remove snapshots of a job (prune frees their space)",
		long: `Removes the given snapshots (ids or unique prefixes) of a job from its repository.
Only the snapshot documents go; the data they alone used stays until runner prune.
A snapshot of another job is refused.`,
		run: runForget,
	})
}

func runForget(ctx context.Context, g *globals, args []string) error {
	if len(args) < 2 {
		return usageError("forget takes a job and at least one snapshot id")
	}
	l, jr, j, done, err := jobRepo(ctx, g, args[0], repo.LockShared, "forget")
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	var forgotten []string
	err = func() error {
		var ids []repo.ID
		for _, prefix := range args[1:] {
			id, err := jr.Repo.FindSnapshot(ctx, prefix)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w", prefix, err)
			}
			sn, err := jr.Repo.LoadSnapshot(ctx, id)
			if err != nil {
				return err
			}
			if sn.Job != j.Name {
				return fmt.Errorf("snapshot %s belongs to job %s, not %s: nothing was forgotten", id.Short(), sn.Job, j.Name)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if err := jr.Repo.DeleteSnapshot(ctx, id); err != nil {
				return err
			}
			forgotten = append(forgotten, id.String())
		}
		return nil
	}()
	if cerr := done(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{"forgotten": forgotten})
	}
	for _, id := range forgotten {
		fmt.Fprintf(g.stdout, "forgot snapshot %s\n", id[:8])
	}
	_, err = fmt.Fprintf(g.stdout, "Forgot %d snapshots of %s; run runner prune %s to free their space.\n", len(forgotten), j.Name, j.Name)
	return err
}
