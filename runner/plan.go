package runner

import (
	"context"
	"fmt"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Action is what a job would do in a run.
type Action string

const (
	ActionCapture Action = "capture" // a primary takes a snapshot
	ActionSkip    Action = "skip"    // nothing to do, with a reason
	ActionError   Action = "error"   // the plan could not be made
)

// Plan is the read-only answer to "what would a run do?".
type Plan struct {
	Jobs []*JobPlan `json:"jobs"`
}

// JobPlan is one job's part of a plan.
type JobPlan struct {
	Job      string         `json:"job"`
	Role     string         `json:"role"`
	Source   string         `json:"source"`
	Target   string         `json:"target"`
	Policy   string         `json:"policy,omitempty"`
	Schedule string         `json:"schedule,omitempty"`
	Hooks    []string       `json:"hooks,omitempty"`
	Action   Action         `json:"action"`
	Reason   string         `json:"reason"`
	Items    []ItemEstimate `json:"items,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Error    string         `json:"error,omitempty"`
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
		if j.Action == ActionCapture {
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
	// Estimate asks each source to estimate its capture (for a source of
	// files, a walk of the tree). runner plan shows the estimates; apply
	// does not need them and skips the extra walk.
	Estimate bool
}

// Plan computes what a run of the given jobs would do. It only reads: the
// sources' plugins estimate their captures without changing anything.
func (e *Engine) Plan(ctx context.Context, jobs []*config.Job, o PlanOptions) *Plan {
	p := &Plan{}
	for _, j := range jobs {
		p.Jobs = append(p.Jobs, e.planJob(ctx, j, o))
	}
	return p
}

func (e *Engine) planJob(ctx context.Context, j *config.Job, o PlanOptions) *JobPlan {
	jp := &JobPlan{Job: j.Name, Role: string(j.Role), Source: j.Source.Address, Target: j.Target.Address}
	if j.Policy != nil {
		jp.Policy = "policy." + j.Policy.Name
		jp.Schedule = j.Policy.ScheduleText
	}
	for _, h := range jobHooks(j) {
		jp.Hooks = append(jp.Hooks, h.Address)
	}
	switch {
	case !j.Enabled:
		jp.Action, jp.Reason = ActionSkip, "disabled (enabled = false)"
		return jp
	case j.Role == config.RoleReplica:
		jp.Action, jp.Reason = ActionSkip, "replica: applying snapshots on replicas is not supported by this version yet"
		return jp
	}
	const reason = "no schedule limits this version: every apply runs every enabled primary job"
	if !o.Estimate {
		jp.Action, jp.Reason = ActionCapture, reason
		return jp
	}
	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()
	src, err := plugins.get(ctx, schema.KindSource, j.Source.Block.TypeName)
	if err != nil {
		jp.Action, jp.Error = ActionError, fmt.Sprintf("%s: %v", j.Source.Address, err)
		return jp
	}
	cp, err := src.PlanCapture(ctx, instance(j.Source))
	if err != nil {
		jp.Action, jp.Error = ActionError, fmt.Sprintf("plan capture of %s: %v", j.Source.Address, err)
		return jp
	}
	jp.Action, jp.Reason = ActionCapture, reason
	for _, it := range cp.Items {
		jp.Items = append(jp.Items, ItemEstimate{Name: it.Name, Kind: it.Kind.String(), Files: it.Files, Bytes: it.Bytes, Detail: it.Detail})
	}
	jp.Notes = cp.Notes
	return jp
}
