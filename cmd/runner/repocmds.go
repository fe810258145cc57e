package main

import (
	"context"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/runner"
)

// jobRepo loads the configuration, finds the job and opens its repository
// with its target brought up. done must be called with the outcome.
func jobRepo(ctx context.Context, g *globals, jobName string, lock repo.LockMode, op string) (l *loaded, jr *runner.JobRepository, j *config.Job, done func(ok bool) error, err error) {
	l, eng, jobs, err := g.loadJobs(ctx, []string{jobName})
	if err != nil {
		return l, nil, nil, nil, err
	}
	j = jobs[0]
	jr, err = eng.OpenJobRepository(ctx, j, lock, op)
	if err != nil {
		return l, nil, nil, nil, err
	}
	return l, jr, j, jr.Close, nil
}

func oneJobArg(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usageError("%s takes one job name", cmd)
	}
	return args[0], nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
