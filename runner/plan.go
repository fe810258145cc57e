package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Action is what a job would do in a run.
type Action string

const (
	ActionCapture Action = "capture" // a primary takes a snapshot
	ActionApply   Action = "apply"   // a replica applies the newest snapshot
	ActionSkip    Action = "skip"    // nothing to do, with a reason
	ActionError   Action = "error"   // the plan could not be made
)

// PlanVersion is the version of the saved plan format (runner plan -out).
const PlanVersion = 1

// Plan is the read-only answer to "what would a run do?". Its JSON form is
// what runner plan -json prints and runner plan -out saves (see the
// README's "Plan JSON" section).
type Plan struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// ConfigHash identifies the configuration the plan was made from
	// (files and variables); apply refuses a plan made from another.
	ConfigHash string     `json:"config_hash,omitempty"`
	Jobs       []*JobPlan `json:"jobs"`
	// Full says whether the plan read targets and estimated captures (runner
	// plan) or only decided what is due (the plan apply makes for itself).
	Full bool `json:"full"`
}

// JobPlan is one job's part of a plan.
type JobPlan struct {
	Job      string   `json:"job"`
	Role     string   `json:"role"`
	Source   string   `json:"source"`
	Target   string   `json:"target"`
	Policy   string   `json:"policy,omitempty"`
	Schedule string   `json:"schedule,omitempty"`
	Hooks    []string `json:"hooks,omitempty"`
	Action   Action   `json:"action"`
	// Reason says why the job is due or not (or skipped).
	Reason string `json:"reason"`
	// NextDue is when the job is next due (now when it is due); zero if
	// never.
	NextDue     time.Time  `json:"next_due,omitzero"`
	Full        bool       `json:"full,omitempty"`
	FullReason  string     `json:"full_reason,omitempty"`
	Forced      bool       `json:"forced,omitempty"`
	LastSuccess *RunRecord `json:"last_success,omitempty"`
	LastFailure *RunRecord `json:"last_failure,omitempty"`
	// Interrupted is a previous run that was killed; this run resumes it.
	Interrupted *Running `json:"interrupted,omitempty"`
	// RoleChange says this server's role for the job changed since its
	// last run (a site moving between servers).
	RoleChange string `json:"role_change,omitempty"`
	// Apply is the snapshot a replica would apply.
	Apply *ApplyPlan     `json:"apply,omitempty"`
	Items []ItemEstimate `json:"items,omitempty"`
	// Snapshots is how many snapshots the job has on its target (when the
	// plan read it), and Retention what the policy would forget after
	// this run's snapshot.
	Snapshots int              `json:"snapshots"`
	Retention *RetentionResult `json:"retention,omitempty"`
	// FreeBytes is the target's free space, -1 if unknown or not read.
	FreeBytes int64    `json:"free_bytes"`
	Notes     []string `json:"notes,omitempty"`
	Error     string   `json:"error,omitempty"`
	// StateHash and RepoHash fingerprint what the plan read: the job's
	// state file and its list of snapshots. Applying a saved plan after
	// either changed is refused.
	StateHash string `json:"state_hash"`
	RepoHash  string `json:"repo_hash,omitempty"`
}

// ItemEstimate is the estimate of one item a capture would produce.
type ItemEstimate struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Files  int64  `json:"files"`
	Bytes  int64  `json:"bytes"`
	Detail string `json:"detail,omitempty"`
}

// Changes reports whether applying the plan would do anything.
func (p *Plan) Changes() bool {
	for _, j := range p.Jobs {
		if j.Action == ActionCapture || j.Action == ActionApply {
			return true
		}
	}
	return false
}

// Errors counts the jobs whose plan failed.
func (p *Plan) Errors() int {
	n := 0
	for _, j := range p.Jobs {
		if j.Action == ActionError {
			n++
		}
	}
	return n
}

// PlanOptions steer planning.
type PlanOptions struct {
	// Full makes the plan runner plan prints: each due job's source
	// estimates its capture (for a source of files, a walk of the tree) and
	// its target is brought up read-only to read its snapshots, usage and
	// what retention would forget. The plan apply makes for itself only
	// decides what is due, so that a cron poll with nothing due touches no
	// target and starts no plugin.
	Full bool
	// Force treats every enabled job as due (runner apply -force).
	Force bool
}

// Plan computes what a run of the given jobs would do. It only reads.
func (e *Engine) Plan(ctx context.Context, jobs []*config.Job, o PlanOptions) *Plan {
	p := &Plan{Version: PlanVersion, Created: e.now(), Full: o.Full}
	for _, j := range jobs {
		p.Jobs = append(p.Jobs, e.planJob(ctx, j, o))
	}
	return p
}

func (e *Engine) planJob(ctx context.Context, j *config.Job, o PlanOptions) *JobPlan {
	jp := &JobPlan{Job: j.Name, Role: string(j.Role), Source: j.Source.Address, Target: j.Target.Address, FreeBytes: -1}
	if j.Policy != nil {
		jp.Policy = "policy." + j.Policy.Name
		jp.Schedule = j.Policy.ScheduleText
	}
	for _, h := range jobHooks(j) {
		jp.Hooks = append(jp.Hooks, h.Address)
	}
	fail := func(format string, args ...any) *JobPlan {
		jp.Action, jp.Error = ActionError, fmt.Sprintf(format, args...)
		return jp
	}
	st, hash, err := e.loadStateHashed(j.Name)
	if err != nil {
		return fail("%v", err)
	}
	jp.StateHash = hash
	jp.LastSuccess, jp.LastFailure = st.LastSuccess, st.LastFailure
	if !j.Enabled {
		jp.Action, jp.Reason = ActionSkip, "disabled (enabled = false)"
		return jp
	}
	if st.Role != "" && st.Role != string(j.Role) {
		jp.RoleChange = fmt.Sprintf("this server becomes %s for job %s (it was %s)", j.Role, j.Name, st.Role)
	}
	now := e.now()
	d := due(j, st, now)
	jp.Reason, jp.NextDue, jp.Full, jp.FullReason = d.Reason, d.Next, d.Full, d.FullReason
	if _, held := e.JobLockHolder(j.Name); held {
		jp.Notes = append(jp.Notes, "a run of this job is under way now")
	} else if st.Running != nil {
		jp.Interrupted = st.Running
		if !d.Due {
			// The interrupted run was due; its work is half done and the
			// repository keeps what it uploaded: finish it.
			d.Due = true
			jp.Reason = fmt.Sprintf("due: resuming the run interrupted at %s (%s)", st.Running.Start.Format(time.RFC3339), d.Reason)
		}
	}
	jp.Forced = o.Force
	if o.Force && !d.Due {
		d.Due = true
		jp.Reason = "due: forced (-force); " + d.Reason
	}
	e.log().Debug("due decision", "job", j.Name, "due", d.Due, "reason", jp.Reason, "next", jp.NextDue, "full", d.Full, "full_reason", d.FullReason)
	if !d.Due {
		jp.Action = ActionSkip
		return jp
	}
	jp.Action = ActionCapture
	if j.Role == config.RoleReplica {
		jp.Action = ActionApply
	}
	if !o.Full {
		return jp
	}
	if j.Role == config.RoleReplica {
		if err := e.planReplica(ctx, j, jp, st); err != nil {
			return fail("%v", err)
		}
		return jp
	}

	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()
	src, err := plugins.get(ctx, schema.KindSource, j.Source.Block.TypeName)
	if err != nil {
		return fail("%s: %v", j.Source.Address, err)
	}
	cp, err := src.PlanCapture(ctx, instance(j.Source))
	if err != nil {
		return fail("plan capture of %s: %v", j.Source.Address, err)
	}
	for _, it := range cp.Items {
		jp.Items = append(jp.Items, ItemEstimate{Name: it.Name, Kind: it.Kind.String(), Files: it.Files, Bytes: it.Bytes, Detail: it.Detail})
	}
	jp.Notes = append(jp.Notes, cp.Notes...)
	if err := e.planTarget(ctx, j, jp, now); err != nil {
		return fail("%v", err)
	}
	return jp
}

// planTarget brings the job's target up read-only and reads what the plan
// shows: free space (and the min_free_ratio check), the job's snapshots
// and what retention would forget after this run.
func (e *Engine) planTarget(ctx context.Context, j *config.Job, jp *JobPlan, now time.Time) error {
	return e.readTarget(ctx, j, jp, func(ts *TargetSession, r *repo.Repository, sns []*repo.Snapshot) error {
		if u, uerr := ts.sess.Usage(ctx); uerr == nil {
			jp.FreeBytes = u.FreeBytes
		}
		note, err := e.checkFreeSpace(ctx, ts)
		if err != nil {
			return err
		}
		if note != "" {
			jp.Notes = append(jp.Notes, note)
		}
		jp.Snapshots = len(BackupSnapshots(sns))
		if hasRetention(j.Policy) {
			if jp.Retention, err = e.decideRetention(ctx, r, j, sns, now, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// readTarget brings a job's target up read-only (its hooks too), opens its
// repository without a lock, lists the job's snapshots and fingerprints
// them for a saved plan, calls fn, and brings everything down again.
func (e *Engine) readTarget(ctx context.Context, j *config.Job, jp *JobPlan, fn func(ts *TargetSession, r *repo.Repository, sns []*repo.Snapshot) error) (err error) {
	ts, err := e.OpenTarget(ctx, j.Target, true, map[string]string{"RUNNER_JOB": j.Name, "RUNNER_OPERATION": "plan"})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := ts.Close(err == nil); cerr != nil && err == nil {
			err = cerr
		}
		jp.Notes = append(jp.Notes, ts.notes...)
	}()
	r, err := e.OpenRepository(ctx, ts, repo.LockNone)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.Background()) }()
	sns, err := JobSnapshots(ctx, r, j.Name)
	if err != nil {
		return fmt.Errorf("list snapshots of %s: %w", j.Name, err)
	}
	jp.RepoHash = snapshotsHash(sns)
	return fn(ts, r, sns)
}

// snapshotsHash fingerprints a job's list of snapshots.
func snapshotsHash(sns []*repo.Snapshot) string {
	h := sha256.New()
	for _, sn := range sns {
		h.Write(sn.ID[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadStateHashed reads a job's state and fingerprints the file.
func (e *Engine) loadStateHashed(job string) (*JobState, string, error) {
	st, err := e.LoadState(job)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(e.statePath(job))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return st, hex.EncodeToString(sum[:]), nil
}

// CheckSavedPlan refuses a saved plan when a job's state changed since it
// was made (the job ran, failed or is running). The job's snapshots are
// checked again when its target is up.
func (e *Engine) CheckSavedPlan(p *Plan) error {
	for _, jp := range p.Jobs {
		if jp.Action != ActionCapture {
			continue
		}
		_, hash, err := e.loadStateHashed(jp.Job)
		if err != nil {
			return err
		}
		if hash != jp.StateHash {
			return fmt.Errorf("job %s ran or its state changed since the plan was made", jp.Job)
		}
	}
	return nil
}

// ApplyPlan is what a replica would apply.
type ApplyPlan struct {
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
}

// planReplica reads the target read-only: the newest backup of the job,
// and whether this replica has applied it already.
func (e *Engine) planReplica(ctx context.Context, j *config.Job, jp *JobPlan, st *JobState) error {
	return e.readTarget(ctx, j, jp, func(_ *TargetSession, _ *repo.Repository, all []*repo.Snapshot) error {
		jp.Snapshots = len(BackupSnapshots(all))
		target := newestBackup(all)
		switch {
		case target == nil:
			jp.Action, jp.Reason = ActionSkip, "replica: the primary has taken no snapshot of this job yet"
		case st.Replica != nil && st.Replica.Snapshot == target.ID.String():
			jp.Action, jp.Reason = ActionSkip, fmt.Sprintf("replica is current: snapshot %s of %s applied", target.ID.Short(), target.Time.Format(time.RFC3339))
		default:
			jp.Apply = &ApplyPlan{Snapshot: target.ID.String(), Time: target.Time, Host: target.Host}
		}
		return nil
	})
}
