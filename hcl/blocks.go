package hcl

import (
	"fmt"
	"math/big"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/policies"
)

// SpecFor turns a plugin's block schema into an HCL decoder spec.
func SpecFor(b *schema.Block) hcldec.Spec {
	obj := hcldec.ObjectSpec{}
	for _, a := range b.Attributes {
		obj[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: a.Type, Required: a.Required}
	}
	for _, nb := range b.Blocks {
		inner := SpecFor(nb.Block)
		switch nb.Nesting {
		case schema.NestingList:
			obj[nb.TypeName] = &hcldec.BlockListSpec{TypeName: nb.TypeName, Nested: inner, MinItems: nb.MinItems, MaxItems: nb.MaxItems}
		case schema.NestingMap:
			obj[nb.TypeName] = &hcldec.BlockMapSpec{TypeName: nb.TypeName, LabelNames: []string{"name"}, Nested: inner}
		default:
			obj[nb.TypeName] = &hcldec.BlockSpec{TypeName: nb.TypeName, Nested: inner, Required: nb.MinItems > 0}
		}
	}
	return obj
}

// suggest returns the candidate closest to s, if it is close enough to be
// a likely typo.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(s, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// ---------------------------------------------------------------- typed attribute helpers

func (e *evaluator) evalAs(a *hcl.Attribute, ctx *hcl.EvalContext, t cty.Type, what string) (cty.Value, bool) {
	v, ds := a.Expr.Value(ctx)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, t)
	if err != nil || cv.IsNull() || !cv.IsWhollyKnown() {
		e.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", a.Name, what)
		return cty.NilVal, false
	}
	return cv, true
}

func (e *evaluator) evalString(a *hcl.Attribute, ctx *hcl.EvalContext) (string, bool) {
	v, ok := e.evalAs(a, ctx, cty.String, "a string is")
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (e *evaluator) evalBool(a *hcl.Attribute, ctx *hcl.EvalContext) (bool, bool) {
	v, ok := e.evalAs(a, ctx, cty.Bool, "a bool (true or false) is")
	if !ok {
		return false, false
	}
	return v.True(), true
}

func (e *evaluator) evalNumber(a *hcl.Attribute, ctx *hcl.EvalContext) (float64, bool) {
	v, ok := e.evalAs(a, ctx, cty.Number, "a number is")
	if !ok {
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	return f, true
}

func (e *evaluator) evalInt(a *hcl.Attribute, ctx *hcl.EvalContext) (int, bool) {
	v, ok := e.evalAs(a, ctx, cty.Number, "a whole number is")
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		e.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "Inappropriate value for attribute %q: a whole number is required.", a.Name)
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i > 1<<31 || i < -(1<<31) {
		e.errorf(a.Expr.Range().Ptr(), "Value out of range", "%q is out of range.", a.Name)
		return 0, false
	}
	return int(i), true
}

func (e *evaluator) evalStringList(a *hcl.Attribute, ctx *hcl.EvalContext) ([]string, bool) {
	v, ok := e.evalAs(a, ctx, cty.List(cty.String), "a list of strings is")
	if !ok {
		return nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		out = append(out, ev.AsString())
	}
	return out, true
}

func (e *evaluator) evalDuration(a *hcl.Attribute, ctx *hcl.EvalContext) (*policies.Duration, bool) {
	s, ok := e.evalString(a, ctx)
	if !ok {
		return nil, false
	}
	d, err := policies.ParseDuration(s)
	if err != nil {
		e.errorf(a.Expr.Range().Ptr(), "Invalid duration", "%s: %s.", a.Name, err)
		return nil, false
	}
	return &d, true
}

// ---------------------------------------------------------------- policy

func (e *evaluator) evalPolicy(n *node) {
	ctx := e.evalContext(nil)
	p := &Policy{Name: n.block.Labels[0], DeclRange: n.block.DefRange}
	a := n.content.Attributes
	raw := map[string]cty.Value{}
	for name, at := range a {
		if v, ds := at.Expr.Value(ctx); !ds.HasErrors() {
			raw[name] = v
		}
	}
	if at := a["schedule"]; at != nil {
		if s, ok := e.evalString(at, ctx); ok {
			sch, err := policies.ParseSchedule(s)
			if err != nil {
				e.errorf(at.Expr.Range().Ptr(), "Invalid schedule", "%s.", err)
			} else {
				p.Schedule, p.ScheduleText = sch, s
			}
		}
	}
	for name, dst := range map[string]**policies.Duration{"catch_up": &p.CatchUp, "full_every": &p.FullEvery, "keep_within": &p.KeepWithin} {
		if at := a[name]; at != nil {
			if d, ok := e.evalDuration(at, ctx); ok {
				*dst = d
			}
		}
	}
	for name, dst := range map[string]*int{
		"keep_last": &p.KeepLast, "keep_hourly": &p.KeepHourly, "keep_daily": &p.KeepDaily,
		"keep_weekly": &p.KeepWeekly, "keep_monthly": &p.KeepMonthly, "keep_yearly": &p.KeepYearly,
		"max_forgets_per_run": &p.MaxForgetsPerRun,
	} {
		if at := a[name]; at != nil {
			if v, ok := e.evalInt(at, ctx); ok {
				if v < 0 {
					e.errorf(at.Expr.Range().Ptr(), "Invalid "+name, "%s must be zero or more, got %d.", name, v)
				}
				*dst = v
			}
		}
	}
	if at := a["keep_tags"]; at != nil {
		if l, ok := e.evalStringList(at, ctx); ok {
			p.KeepTags = l
		}
	}
	if at := a["max_size"]; at != nil {
		e.evalMaxSize(at, ctx, p)
	}
	if at := a["quiet"]; at != nil {
		if l, ok := e.evalStringList(at, ctx); ok {
			for _, s := range l {
				w, err := policies.ParseWindow(s)
				if err != nil {
					e.errorf(at.Expr.Range().Ptr(), "Invalid quiet window", "%s.", err)
					continue
				}
				p.Quiet = append(p.Quiet, w)
			}
		}
	}
	if p.CatchUp != nil && p.Schedule == nil {
		e.errorf(a["catch_up"].Expr.Range().Ptr(), "catch_up without schedule", "catch_up says how late a missed scheduled run may still be made; set a schedule too.")
	}
	e.policies["policy."+p.Name] = p
	e.policyVal[p.Name] = withAddress(cty.ObjectVal(raw), "policy."+p.Name)
	e.cfg.Policies = append(e.cfg.Policies, p)
}

func (e *evaluator) evalMaxSize(at *hcl.Attribute, ctx *hcl.EvalContext, p *Policy) {
	v, ds := at.Expr.Value(ctx)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return
	}
	switch {
	case v.Type() == cty.Number && !v.IsNull():
		f, _ := v.AsBigFloat().Float64()
		if f < 0 {
			e.errorf(at.Expr.Range().Ptr(), "Invalid max_size", "max_size must not be negative.")
			return
		}
		p.MaxSize = int64(f)
	case v.Type() == cty.String && !v.IsNull():
		n, err := policies.ParseSize(v.AsString())
		if err != nil {
			e.errorf(at.Expr.Range().Ptr(), "Invalid max_size", "%s.", err)
			return
		}
		p.MaxSize = n
	default:
		e.errorf(at.Expr.Range().Ptr(), "Incorrect attribute value type", `Inappropriate value for attribute "max_size": a size such as "1000MB" is required.`)
	}
}

// ---------------------------------------------------------------- job

func (e *evaluator) evalJob(n *node) {
	a := n.content.Attributes
	name := n.block.Labels[0]
	insts, forEach, ok := e.expand(a["for_each"], e.evalContext(nil))
	if !ok {
		return
	}
	for _, in := range insts {
		ctx := e.evalContext(in.each)
		j := &Job{
			Name:      name,
			BlockName: name,
			Key:       in.key,
			DeclRange: n.block.DefRange,
			Role:      RolePrimary,
			Enabled:   true,
		}
		if forEach {
			j.Name = fmt.Sprintf("%s[%q]", name, in.key)
		}
		before := len(e.diags)
		j.Source = e.evalRef(a["source"], ctx, "source")
		j.Target = e.evalRef(a["target"], ctx, "target")
		if at := a["policy"]; at != nil {
			v, ds := at.Expr.Value(ctx)
			e.diags = append(e.diags, ds...)
			if !ds.HasErrors() {
				addr, ok := refAddress(v)
				if p := e.policies[addr]; ok && p != nil {
					j.Policy = p
				} else {
					e.errorf(at.Expr.Range().Ptr(), "Invalid reference", "policy must refer to a policy block, e.g. policy.NAME.")
				}
			}
		}
		// Per-job settings override the policy's for this job (a site's
		// own quota, read from its directory): the job gets its own copy.
		if a["max_size"] != nil || a["full_every"] != nil {
			if j.Policy == nil {
				r := a["max_size"]
				if r == nil {
					r = a["full_every"]
				}
				e.errorf(r.Expr.Range().Ptr(), "Missing policy", "job %s: %s overrides a setting of the job's policy, so the job needs a policy.", j.Name, r.Name)
			} else {
				p := *j.Policy
				if at := a["max_size"]; at != nil {
					e.evalMaxSize(at, ctx, &p)
				}
				if at := a["full_every"]; at != nil {
					if d, ok := e.evalDuration(at, ctx); ok {
						p.FullEvery = d
					}
				}
				j.Policy = &p
			}
		}
		if at := a["role"]; at != nil {
			if s, ok := e.evalString(at, ctx); ok {
				switch Role(s) {
				case RolePrimary, RoleReplica:
					j.Role = Role(s)
				default:
					e.errorf(at.Expr.Range().Ptr(), "Invalid role", "job %s: role must be \"primary\" or \"replica\", got %q.", j.Name, s)
				}
			}
		}
		if at := a["hooks"]; at != nil {
			j.Hooks = e.evalRefList(at, ctx, "hook")
		}
		if at := a["notify"]; at != nil {
			j.Notify = e.evalRefList(at, ctx, "notify")
		}
		if at := a["enabled"]; at != nil {
			if b, ok := e.evalBool(at, ctx); ok {
				j.Enabled = b
			}
		}
		if at := a["timeout"]; at != nil {
			if d, ok := e.evalDuration(at, ctx); ok {
				j.Timeout = d.Approx()
				if j.Timeout <= 0 {
					e.errorf(at.Expr.Range().Ptr(), "Invalid timeout", "timeout must be positive.")
				}
			}
		}
		if !e.diags[before:].HasErrors() {
			e.cfg.Jobs = append(e.cfg.Jobs, j)
		}
	}
}

func (e *evaluator) evalRef(a *hcl.Attribute, ctx *hcl.EvalContext, kind string) *Instance {
	v, ds := a.Expr.Value(ctx)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return nil
	}
	return e.refInstance(v, a.Expr.Range().Ptr(), a.Name, kind)
}
