package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/backup-runner/runner/internal/progress"

	"github.com/backup-runner/runner/internal/repo"
)

type checkOptions struct {
	readData bool
	subset   string
}

func init() {
	var o checkOptions
	register(&command{
		name:  "check",
		args:  "JOB",
		short: "Verify the repository a job uses",
		long: `Checks the structure of the repository on the job's target: every index reads,
every indexed pack exists and matches its header, every snapshot's trees load and
every chunk they name is indexed. With --read-data every chunk is also read,
decrypted, decompressed and hashed (--read-data-subset 10% reads a random tenth of
the packs). Each problem names the pack, the chunk, and the snapshots and files it
affects.

EXIT STATUS
  0  no problem found
  1  problems found, or the check could not run`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&o.readData, "read-data", false, "read and verify every chunk")
			fs.StringVar(&o.subset, "read-data-subset", "", "read and verify this `fraction` of the packs, e.g. 10%")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runCheck(ctx, g, o, args) },
	})
}

func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && pct {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		return 0, fmt.Errorf("invalid --read-data-subset %q: give a percentage such as 10%% or a fraction such as 0.1", s)
	}
	return f, nil
}

func runCheck(ctx context.Context, g *globals, o checkOptions, args []string) error {
	name, err := oneJobArg("check", args)
	if err != nil {
		return err
	}
	co := repo.CheckOptions{ReadData: o.readData}
	if o.subset != "" {
		if co.ReadDataSubset, err = parseFraction(o.subset); err != nil {
			return usageError("%v", err)
		}
		co.ReadData = true
	}
	l, jr, _, done, err := jobRepo(ctx, g, name, repo.LockShared, "check")
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	var done64, total64 atomic.Int64
	co.Progress = func(done, total int) { done64.Store(int64(done)); total64.Store(int64(total)) }
	line := progress.Start(g.stderr, g.progress() && co.ReadData, 500*time.Millisecond, func() string {
		return fmt.Sprintf("checking: %d of %d packs read", done64.Load(), total64.Load())
	})
	rep, err := jr.Repo.Check(ctx, co)
	line.Stop()
	if cerr := done(err == nil && rep.OK()); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if g.json {
		problems := []string{}
		for _, p := range rep.Problems {
			problems = append(problems, p.String())
		}
		if err := json.NewEncoder(g.stdout).Encode(map[string]any{
			"ok": rep.OK(), "snapshots": rep.Snapshots, "trees": rep.Trees, "data_blobs": rep.DataBlobs,
			"packs": rep.Packs, "packs_read": rep.PacksRead, "unindexed_packs": len(rep.UnindexedPacks), "problems": problems,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "Checked %d snapshots, %d trees, %d data chunks in %d packs", rep.Snapshots, rep.Trees, rep.DataBlobs, rep.Packs)
		if co.ReadData {
			fmt.Fprintf(g.stdout, "; read %d packs", rep.PacksRead)
		}
		fmt.Fprintln(g.stdout, ".")
		if n := len(rep.UnindexedPacks); n > 0 {
			fmt.Fprintf(g.stdout, "%d packs are not in any index (an interrupted backup); the next backup or prune takes care of them.\n", n)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(g.stdout, "PROBLEM: %s\n", p)
		}
		if rep.OK() {
			fmt.Fprintln(g.stdout, "No problems found.")
		}
	}
	if !rep.OK() {
		return &exitCodeError{code: exitError, err: fmt.Errorf("%d problems found", len(rep.Problems))}
	}
	return nil
}
