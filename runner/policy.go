package runner

import (
	"context"
	"fmt"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/policies"
)

// due decides whether a job runs now, from its policy and the last
// successful run in its state (a failed run never makes a job look done).
func due(j *config.Job, st *JobState, now time.Time) policies.DueDecision {
	in := policies.DueInput{Now: now}
	if p := j.Policy; p != nil {
		in.Schedule, in.CatchUp, in.Quiet, in.FullEvery = p.Schedule, p.CatchUp, p.Quiet, p.FullEvery
	}
	if st.LastSuccess != nil {
		in.LastSuccess = st.LastSuccess.End
	}
	in.LastFull = st.LastFull
	return policies.Due(in)
}

// retentionOf is the retention part of a job's policy.
func retentionOf(p *config.Policy) policies.Retention {
	if p == nil {
		return policies.Retention{}
	}
	return policies.Retention{
		KeepLast: p.KeepLast, KeepHourly: p.KeepHourly, KeepDaily: p.KeepDaily,
		KeepWeekly: p.KeepWeekly, KeepMonthly: p.KeepMonthly, KeepYearly: p.KeepYearly,
		KeepWithin: p.KeepWithin, KeepTags: p.KeepTags,
		MaxSize: p.MaxSize, MaxForgetsPerRun: p.MaxForgetsPerRun,
	}
}

// hasRetention says whether the policy could ever forget anything.
func hasRetention(p *config.Policy) bool {
	r := retentionOf(p)
	return r.HasKeepRules() || r.MaxSize > 0
}

// Forget is a snapshot retention forgets, with the space that forgetting
// it frees (the stored bytes no kept snapshot shares) and the rule.
type Forget struct {
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Frees    int64     `json:"frees_bytes"`
	Reason   string    `json:"reason"`
}

// RetentionResult is what retention decided for a job's snapshots.
type RetentionResult struct {
	Forget []Forget `json:"forget,omitempty"`
	Kept   int      `json:"kept"`
	// Held is the stored space the job's snapshots hold before forgetting,
	// and HeldAfter after; -1 when not computed (no quota).
	Held      int64 `json:"held_bytes"`
	HeldAfter int64 `json:"held_after_bytes"`
	// Reasons maps every snapshot id to the reason of its decision, for
	// the debug log and "runner plan -json".
	Reasons map[string]string `json:"reasons,omitempty"`
}

// decideRetention applies a job's retention policy to its snapshots in r.
// pending, if not nil, is a snapshot about to be taken (a plan's view of
// the run): it counts as the newest and is never itself forgotten.
func (e *Engine) decideRetention(ctx context.Context, r *repo.Repository, j *config.Job, sns []*repo.Snapshot, now time.Time, pending bool) (*RetentionResult, error) {
	ret := retentionOf(j.Policy)
	res := &RetentionResult{Held: -1, HeldAfter: -1, Reasons: map[string]string{}}
	// Replicas' records of their own state are theirs to manage; what a
	// replica has not applied yet is protected.
	applied, hasReplicas := unappliedSince(sns, now)
	sns = primarySnapshots(sns)
	infos := make([]policies.SnapshotInfo, 0, len(sns)+1)
	pos := map[string]int{}
	for i, sn := range sns {
		id := sn.ID.String()
		pos[id] = i
		infos = append(infos, policies.SnapshotInfo{ID: id, Time: sn.Time, Tags: sn.Tags,
			Unapplied: hasReplicas && sn.Time.After(applied) && sn.Role == string(config.RolePrimary)})
	}
	const pendingID = "(this run)"
	if pending {
		infos = append(infos, policies.SnapshotInfo{ID: pendingID, Time: now})
	}
	// Measuring walks every distinct tree of the job's snapshots: done for
	// a quota, and for a plan, which shows the space each forget frees;
	// not after every backup of a job without a quota.
	var usage *repo.SnapshotUsage
	if len(sns) > 0 && (ret.MaxSize > 0 || pending) {
		var err error
		if usage, err = r.SnapshotUsage(ctx, sns); err != nil {
			return nil, fmt.Errorf("measure the space of job %s's snapshots: %w", j.Name, err)
		}
	}
	positions := func(ids []string) []int {
		out := make([]int, 0, len(ids))
		for _, id := range ids {
			if p, ok := pos[id]; ok {
				out = append(out, p)
			}
		}
		return out
	}
	var sizeOf policies.SizeOf
	if usage != nil {
		sizeOf = func(ids []string) int64 { return usage.Size(positions(ids)) }
	}
	decisions := ret.Decide(infos, now, sizeOf)
	var kept []string
	for _, d := range decisions {
		res.Reasons[d.Snapshot.ID] = d.Reason()
		if d.Keep {
			kept = append(kept, d.Snapshot.ID)
		}
	}
	res.Kept = len(kept)
	keptPos := positions(kept)
	for _, d := range decisions {
		if d.Keep || d.Snapshot.ID == pendingID {
			continue
		}
		f := Forget{Snapshot: d.Snapshot.ID, Time: d.Snapshot.Time, Reason: d.Reason()}
		if usage != nil {
			f.Frees = usage.Exclusive(pos[d.Snapshot.ID], keptPos)
		}
		res.Forget = append(res.Forget, f)
	}
	if usage != nil {
		all := make([]int, len(sns))
		for i := range all {
			all[i] = i
		}
		res.Held, res.HeldAfter = usage.Size(all), usage.Size(keptPos)
	}
	return res, nil
}

// largestQuota is the largest max_size of the jobs (of the whole
// configuration) on a target, and the job that has it.
func (e *Engine) largestQuota(target *config.Instance) (int64, string) {
	var max int64
	var job string
	for _, j := range e.Config.Jobs {
		if j.Target == target && j.Policy != nil && j.Policy.MaxSize > max {
			max, job = j.Policy.MaxSize, j.Name
		}
	}
	return max, job
}

// checkFreeSpace refuses a run on a target whose free space is below
// min_free_ratio times the largest quota of the jobs on it.
func (e *Engine) checkFreeSpace(ctx context.Context, ts *TargetSession) (string, error) {
	ratio := ts.target.MinFreeRatio
	if ratio <= 0 {
		return "", nil
	}
	quota, job := e.largestQuota(ts.target)
	if quota <= 0 {
		return fmt.Sprintf("%s: min_free_ratio is set but no job on it has a max_size quota: not checked", ts.target.Address), nil
	}
	u, err := ts.sess.Usage(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: read free space for min_free_ratio: %w", ts.target.Address, err)
	}
	if u.FreeBytes < 0 {
		return fmt.Sprintf("%s: free space unknown: min_free_ratio not checked", ts.target.Address), nil
	}
	// In floating point: ratio x a large quota may not fit in an int64.
	need := ratio * float64(quota)
	if float64(u.FreeBytes) < need {
		return "", fmt.Errorf("%s: only %s free, below min_free_ratio %g x the largest quota %s (job %s) = %s: refusing to run",
			ts.target.Address, policies.FormatSize(u.FreeBytes), ratio, policies.FormatSize(quota), job, policies.FormatSize(int64(min(need, 1<<62))))
	}
	return "", nil
}
