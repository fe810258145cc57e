package hcl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Options steer evaluation.
type Options struct {
	Vars     []string // -var NAME=VALUE, in order
	VarFiles []string // -var-file FILE, in order
	// Getenv reads the environment; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Resolver provides plugin schemas, functions and checks.
	Resolver PluginResolver
	// OnPlugins receives the decoded plugin blocks and runner { plugin_dirs }
	// before any plugin is resolved, so the host can pin and search them.
	OnPlugins func(decls []*PluginDecl, pluginDirs []string) hcl.Diagnostics
}

func (o Options) getenv(k string) (string, bool) {
	if o.Getenv != nil {
		return o.Getenv(k)
	}
	return os.LookupEnv(k)
}

// AddressAttr is the attribute that carries a block instance's address in
// the object value a reference to it evaluates to (so job { source =
// each.value } knows which source it was given). Plugin attribute names
// start with a letter, so it cannot collide.
const AddressAttr = "_address"

// Load parses and evaluates the configuration in dir. The returned Module
// is non-nil whenever files were read, for rendering diagnostics.
func Load(ctx context.Context, dir string, opts Options) (*Config, *Module, hcl.Diagnostics) {
	m, diags := Parse(dir)
	if diags.HasErrors() {
		return nil, m, diags
	}
	cfg, ds := m.Evaluate(ctx, opts)
	return cfg, m, append(diags, ds...)
}

type node struct {
	key   string // local.x, source.files.docs, policy.p, job.j, runner
	kind  string
	block *hcl.Block
	attr  *hcl.Attribute // locals
	rng   hcl.Range
	order int
	deps  []string

	// plugin blocks
	schema *schema.Block
	spec   hcldec.Spec
	meta   *hcl.BodyContent
	remain hcl.Body

	content *hcl.BodyContent // core blocks
	failed  bool
}

type evaluator struct {
	ctx   context.Context
	m     *Module
	opts  Options
	fns   map[string]function.Function
	vars  map[string]cty.Value
	nodes map[string]*node
	diags hcl.Diagnostics

	locals    map[string]cty.Value
	blockVals map[string]map[string]map[string]cty.Value // kind -> type -> name -> value
	policyVal map[string]cty.Value
	instances map[string]*Instance
	policies  map[string]*Policy
	cfg       *Config
}

var metaSchemas = map[string]*hcl.BodySchema{
	"source": {Attributes: []hcl.AttributeSchema{{Name: "for_each"}}},
	"target": {Attributes: []hcl.AttributeSchema{{Name: "hooks"}, {Name: "min_free_ratio"}, {Name: "password_file"}}},
	"hook":   {},
	"notify": {},
}

var runnerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "state_dir"}, {Name: "log_file"}, {Name: "parallel"}, {Name: "plugin_dirs"},
	{Name: "metrics_file"}, {Name: "inhibit_shutdown"},
}}

var pluginSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "path", Required: true}, {Name: "sha256", Required: true},
}}

var policySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "schedule"}, {Name: "catch_up"}, {Name: "full_every"}, {Name: "quiet"},
	{Name: "keep_last"}, {Name: "keep_hourly"}, {Name: "keep_daily"}, {Name: "keep_weekly"},
	{Name: "keep_monthly"}, {Name: "keep_yearly"}, {Name: "keep_within"}, {Name: "keep_tags"},
	{Name: "max_size"}, {Name: "max_forgets_per_run"},
}}

var jobSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "for_each"}, {Name: "source", Required: true}, {Name: "target", Required: true},
	{Name: "policy"}, {Name: "role"}, {Name: "hooks"}, {Name: "notify"}, {Name: "enabled"}, {Name: "timeout"},
	{Name: "max_size"}, {Name: "full_every"},
}}

var kindOf = map[string]schema.Kind{
	"source": schema.KindSource, "target": schema.KindTarget, "hook": schema.KindHook, "notify": schema.KindNotify,
}

// Evaluate evaluates a parsed module: variables, plugin declarations,
// locals and blocks in dependency order, then the jobs.
func (m *Module) Evaluate(ctx context.Context, opts Options) (*Config, hcl.Diagnostics) {
	e := &evaluator{
		ctx: ctx, m: m, opts: opts,
		nodes:     map[string]*node{},
		locals:    map[string]cty.Value{},
		blockVals: map[string]map[string]map[string]cty.Value{},
		policyVal: map[string]cty.Value{},
		instances: map[string]*Instance{},
		policies:  map[string]*Policy{},
		cfg:       &Config{Dir: m.Dir, Runner: RunnerSettings{StateDir: DefaultStateDir, Parallel: DefaultParallel}},
	}
	e.fns = coreFunctions(m.Dir, opts.getenv)

	vars, ds := m.evalVariables(opts, e.fns)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return nil, e.diags
	}
	e.vars = vars
	e.cfg.Variables = vars

	e.decodePlugins()
	if e.diags.HasErrors() {
		return nil, e.diags
	}
	if opts.OnPlugins != nil {
		e.diags = append(e.diags, opts.OnPlugins(e.cfg.Plugins, e.cfg.Runner.PluginDirs)...)
		if e.diags.HasErrors() {
			return nil, e.diags
		}
	}
	e.addPluginFunctions()

	order := e.buildGraph()
	if e.diags.HasErrors() {
		return nil, e.diags
	}
	for _, n := range order {
		e.evalNode(n)
	}
	if e.diags.HasErrors() {
		return nil, e.diags
	}
	return e.cfg, e.diags
}

func (e *evaluator) errorf(subject *hcl.Range, summary, format string, args ...any) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject,
	})
}

// ---------------------------------------------------------------- plugins

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (e *evaluator) decodePlugins() {
	ectx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(e.vars)}, Functions: e.fns}
	for _, b := range e.m.plugins {
		content, ds := b.Body.Content(pluginSchema)
		e.diags = append(e.diags, ds...)
		if ds.HasErrors() {
			continue
		}
		path, ok1 := e.evalString(content.Attributes["path"], ectx)
		sum, ok2 := e.evalString(content.Attributes["sha256"], ectx)
		if !ok1 || !ok2 {
			continue
		}
		sum = strings.ToLower(strings.TrimSpace(sum))
		if !sha256Re.MatchString(sum) {
			e.errorf(content.Attributes["sha256"].Expr.Range().Ptr(), "Invalid sha256",
				"plugin %q: sha256 must be 64 hexadecimal digits (the output of sha256sum), got %q.", b.Labels[0], sum)
			continue
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(e.m.Dir, path)
		}
		e.cfg.Plugins = append(e.cfg.Plugins, &PluginDecl{Name: b.Labels[0], Path: path, SHA256: sum, DeclRange: b.DefRange})
	}
	// plugin_dirs is needed before any block is decoded, so it may use
	// variables only, like plugin blocks.
	if e.m.runner != nil {
		attrs, _ := e.m.runner.Body.JustAttributes()
		if a := attrs["plugin_dirs"]; a != nil {
			if l, ok := e.evalStringList(a, ectx); ok {
				for i, d := range l {
					if !filepath.IsAbs(d) {
						l[i] = filepath.Join(e.m.Dir, d)
					}
				}
				e.cfg.Runner.PluginDirs = l
			}
		}
	}
}

// addPluginFunctions asks the resolver for every function the files call
// that is not built in. A function nobody provides is left out, and HCL
// reports the call with its position.
func (e *evaluator) addPluginFunctions() {
	if e.opts.Resolver == nil {
		return
	}
	calls := map[string]hcl.Range{}
	for _, f := range e.m.Files() {
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			continue
		}
		_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if c, ok := n.(*hclsyntax.FunctionCallExpr); ok {
				if _, seen := calls[c.Name]; !seen {
					calls[c.Name] = c.NameRange
				}
			}
			return nil
		})
	}
	names := make([]string, 0, len(calls))
	for n := range calls {
		if _, core := e.fns[n]; !core {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fn, err := e.opts.Resolver.Function(e.ctx, name)
		if errors.Is(err, ErrNotProvided) {
			continue
		}
		if err != nil {
			rng := calls[name]
			e.errorf(&rng, "Cannot load plugin function", "The function %s is provided by a plugin that could not be used: %s", name, err)
			continue
		}
		e.fns[name] = fn
	}
}

// ---------------------------------------------------------------- graph

func (e *evaluator) addNode(n *node) {
	n.order = len(e.nodes)
	e.nodes[n.key] = n
}

func (e *evaluator) buildGraph() []*node {
	for _, a := range e.m.locals {
		e.addNode(&node{key: "local." + a.Name, kind: "local", attr: a, rng: a.NameRange})
	}
	if e.m.runner != nil {
		e.addNode(&node{key: "runner", kind: "runner", block: e.m.runner, rng: e.m.runner.DefRange})
	}
	for _, kind := range []string{"hook", "target", "source", "notify"} {
		for _, b := range e.m.plugBlks[kind] {
			e.addNode(&node{key: kind + "." + b.Labels[0] + "." + b.Labels[1], kind: kind, block: b, rng: b.DefRange})
		}
	}
	for _, b := range e.m.policies {
		e.addNode(&node{key: "policy." + b.Labels[0], kind: "policy", block: b, rng: b.DefRange})
	}
	for _, b := range e.m.jobs {
		e.addNode(&node{key: "job." + b.Labels[0], kind: "job", block: b, rng: b.DefRange})
	}

	all := e.sortedNodes()
	for _, n := range all {
		e.collectDeps(n, e.prepareNode(n))
	}
	return e.topoSort(all)
}

func (e *evaluator) sortedNodes() []*node {
	all := make([]*node, 0, len(e.nodes))
	for _, n := range e.nodes {
		all = append(all, n)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].order < all[j].order })
	return all
}

// prepareNode decodes a node's structure (for plugin blocks: with the
// plugin's schema) and returns the traversals its expressions contain.
func (e *evaluator) prepareNode(n *node) []hcl.Traversal {
	var refs []hcl.Traversal
	addAttrs := func(c *hcl.BodyContent) {
		if c == nil {
			return
		}
		names := make([]string, 0, len(c.Attributes))
		for k := range c.Attributes {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			refs = append(refs, c.Attributes[k].Expr.Variables()...)
		}
	}
	switch n.kind {
	case "local":
		refs = n.attr.Expr.Variables()
	case "runner", "policy", "job":
		sch := map[string]*hcl.BodySchema{"runner": runnerSchema, "policy": policySchema, "job": jobSchema}[n.kind]
		content, ds := n.block.Body.Content(sch)
		e.diags = append(e.diags, ds...)
		if ds.HasErrors() {
			n.failed = true
		}
		n.content = content
		addAttrs(content)
	default:
		sch, err := e.blockSchema(n)
		if err != nil {
			n.failed = true
			return nil
		}
		for _, meta := range metaSchemas[n.kind].Attributes {
			if sch.Attribute(meta.Name) != nil {
				// The meta-argument would take the attribute before the
				// plugin ever saw it.
				e.errorf(n.block.LabelRanges[0].Ptr(), "Plugin schema conflict",
					"The plugin providing %s %q declares an attribute %q, which runner reserves on %s blocks (%s). The plugin must rename it.",
					n.kind, n.block.Labels[0], meta.Name, n.kind, metaNames(n.kind))
				n.failed = true
				return nil
			}
		}
		n.schema = sch
		n.spec = SpecFor(sch)
		meta, remain, ds := n.block.Body.PartialContent(metaSchemas[n.kind])
		e.diags = append(e.diags, ds...)
		n.meta, n.remain = meta, remain
		addAttrs(meta)
		refs = append(refs, hcldec.Variables(remain, n.spec)...)
	}
	return refs
}

func (e *evaluator) blockSchema(n *node) (*schema.Block, error) {
	kind := kindOf[n.kind]
	typeName := n.block.Labels[0]
	if e.opts.Resolver == nil {
		err := fmt.Errorf("no plugins are available")
		e.errorf(n.block.LabelRanges[0].Ptr(), "Unknown "+n.kind+" type", "%s %q: %s.", n.kind, typeName, err)
		return nil, err
	}
	sch, err := e.opts.Resolver.BlockSchema(e.ctx, kind, typeName)
	if errors.Is(err, ErrNotProvided) {
		known := e.opts.Resolver.BlockTypes(e.ctx, kind)
		detail := fmt.Sprintf("No plugin provides %s type %q.", n.kind, typeName)
		if s := suggest(typeName, known); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		} else if len(known) > 0 {
			detail += fmt.Sprintf(" Known %s types: %s.", n.kind, strings.Join(known, ", "))
		}
		e.errorf(n.block.LabelRanges[0].Ptr(), "Unknown "+n.kind+" type", "%s", detail)
		return nil, err
	}
	if err != nil {
		e.errorf(n.block.LabelRanges[0].Ptr(), "Cannot load plugin", "%s %q: %s", n.kind, typeName, err)
		return nil, err
	}
	return sch, nil
}

var refRoots = []string{"var", "local", "each", "source", "target", "hook", "notify", "policy"}

// collectDeps turns a node's traversals into graph edges, reporting
// references to things that are not declared.
func (e *evaluator) collectDeps(n *node, refs []hcl.Traversal) {
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] && k != n.key {
			seen[k] = true
			n.deps = append(n.deps, k)
		}
		if k == n.key {
			e.errorf(n.rng.Ptr(), "Self-referential block", "%s refers to itself.", n.key)
		}
	}
	for _, t := range refs {
		root := t.RootName()
		rng := t.SourceRange()
		switch root {
		case "var":
			name := partName(t, 1)
			if name == "" {
				e.errorf(&rng, "Invalid reference", "A reference to a variable looks like var.NAME.")
				continue
			}
			if _, ok := e.vars[name]; !ok {
				e.errorf(&rng, "Reference to undeclared input variable", "No variable %q is declared. Declare it with a variable %q {} block.", name, name)
			}
		case "local":
			name := partName(t, 1)
			if name == "" {
				e.errorf(&rng, "Invalid reference", "A reference to a local value looks like local.NAME.")
				continue
			}
			if e.nodes["local."+name] == nil {
				e.errorf(&rng, "Reference to undeclared local value", "No local value %q is declared in a locals block.", name)
				continue
			}
			add("local." + name)
		case "each":
			if !n.hasForEach() {
				e.errorf(&rng, `Reference to "each" in a block without for_each`, "each.key and each.value can be used only in a block that sets for_each.")
				continue
			}
			if f := partName(t, 1); f != "key" && f != "value" {
				e.errorf(&rng, "Invalid each reference", "each has two attributes: each.key and each.value.")
			}
		case "source", "target", "hook", "notify":
			typ, name := partName(t, 1), partName(t, 2)
			if typ == "" {
				e.errorf(&rng, "Invalid reference", "A reference to a %s looks like %s.TYPE.NAME.", root, root)
				continue
			}
			if name == "" {
				found := false
				for _, other := range e.sortedNodes() {
					if other.kind == root && other.block.Labels[0] == typ {
						add(other.key)
						found = true
					}
				}
				if !found {
					e.errorf(&rng, "Reference to undeclared "+root, "No %s of type %q is declared.", root, typ)
				}
				continue
			}
			k := root + "." + typ + "." + name
			if e.nodes[k] == nil {
				e.errorf(&rng, "Reference to undeclared "+root, "No %s %q %q is declared.%s", root, typ, name, e.suggestBlock(root, typ, name))
				continue
			}
			add(k)
		case "policy":
			name := partName(t, 1)
			if name == "" {
				e.errorf(&rng, "Invalid reference", "A reference to a policy looks like policy.NAME.")
				continue
			}
			if e.nodes["policy."+name] == nil {
				e.errorf(&rng, "Reference to undeclared policy", "No policy %q is declared.%s", name, e.suggestBlock("policy", "", name))
				continue
			}
			add("policy." + name)
		case "job":
			e.errorf(&rng, "Invalid reference", "Jobs cannot be referred to; they are the end of the graph.")
		default:
			detail := fmt.Sprintf("There is nothing called %q. References start with %s.", root, strings.Join(refRoots, ", "))
			if s := suggest(root, refRoots); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			e.errorf(&rng, "Unknown reference", "%s", detail)
		}
	}
}

// metaNames lists the meta-arguments runner owns on blocks of a kind.
func metaNames(kind string) string {
	var names []string
	for _, a := range metaSchemas[kind].Attributes {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func (n *node) hasForEach() bool {
	switch n.kind {
	case "source":
		return n.meta != nil && n.meta.Attributes["for_each"] != nil
	case "job":
		return n.content != nil && n.content.Attributes["for_each"] != nil
	}
	return false
}

func (e *evaluator) suggestBlock(kind, typ, name string) string {
	var names []string
	for _, n := range e.nodes {
		if n.kind != kind || n.block == nil {
			continue
		}
		if kind == "policy" {
			names = append(names, n.block.Labels[0])
		} else if n.block.Labels[0] == typ {
			names = append(names, n.block.Labels[1])
		}
	}
	sort.Strings(names)
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

func partName(t hcl.Traversal, i int) string {
	if len(t) <= i {
		return ""
	}
	return attrName(t[i])
}

// topoSort orders nodes so that every node comes after what it refers to,
// keeping declaration order otherwise, and reports cycles.
func (e *evaluator) topoSort(all []*node) []*node {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []*node
	var stack []string
	reported := false
	var visit func(n *node)
	visit = func(n *node) {
		switch state[n.key] {
		case done:
			return
		case visiting:
			if reported {
				return
			}
			reported = true
			start := 0
			for i, k := range stack {
				if k == n.key {
					start = i
				}
			}
			cycle := append(append([]string{}, stack[start:]...), n.key)
			e.errorf(n.rng.Ptr(), "Cycle in references", "These refer to each other in a circle: %s.", strings.Join(cycle, " -> "))
			return
		}
		state[n.key] = visiting
		stack = append(stack, n.key)
		for _, d := range n.deps {
			visit(e.nodes[d])
		}
		stack = stack[:len(stack)-1]
		state[n.key] = done
		order = append(order, n)
	}
	for _, n := range all {
		visit(n)
	}
	return order
}

// ---------------------------------------------------------------- evaluation

type eachVal struct {
	key   cty.Value
	value cty.Value
}

func (e *evaluator) evalContext(each *eachVal) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":    cty.ObjectVal(e.vars),
		"local":  cty.ObjectVal(e.locals),
		"policy": cty.ObjectVal(e.policyVal),
	}
	for _, kind := range []string{"source", "target", "hook", "notify"} {
		types := map[string]cty.Value{}
		for t, names := range e.blockVals[kind] {
			types[t] = cty.ObjectVal(names)
		}
		vars[kind] = cty.ObjectVal(types)
	}
	if each != nil {
		vars["each"] = cty.ObjectVal(map[string]cty.Value{"key": each.key, "value": each.value})
	}
	return &hcl.EvalContext{Variables: vars, Functions: e.fns}
}

func (e *evaluator) evalNode(n *node) {
	if n.failed {
		return
	}
	for _, d := range n.deps {
		if e.nodes[d].failed {
			n.failed = true // its own error is already reported
			return
		}
	}
	before := len(e.diags)
	switch n.kind {
	case "local":
		v, ds := n.attr.Expr.Value(e.evalContext(nil))
		e.diags = append(e.diags, ds...)
		if !ds.HasErrors() {
			e.locals[n.attr.Name] = v
		}
	case "runner":
		e.evalRunner(n)
	case "policy":
		e.evalPolicy(n)
	case "job":
		e.evalJob(n)
	default:
		e.evalPluginBlock(n)
	}
	if e.diags[before:].HasErrors() {
		n.failed = true
	}
}

func (e *evaluator) evalRunner(n *node) {
	ctx := e.evalContext(nil)
	a := n.content.Attributes
	r := &e.cfg.Runner
	if at := a["state_dir"]; at != nil {
		if s, ok := e.evalString(at, ctx); ok {
			if !filepath.IsAbs(s) {
				e.errorf(at.Expr.Range().Ptr(), "Invalid state_dir", "state_dir must be an absolute path, got %q.", s)
			}
			r.StateDir = s
		}
	}
	if at := a["log_file"]; at != nil {
		if s, ok := e.evalString(at, ctx); ok {
			if !filepath.IsAbs(s) {
				e.errorf(at.Expr.Range().Ptr(), "Invalid log_file", "log_file must be an absolute path, got %q.", s)
			}
			r.LogFile = s
		}
	}
	if at := a["metrics_file"]; at != nil {
		if s, ok := e.evalString(at, ctx); ok {
			if !filepath.IsAbs(s) {
				e.errorf(at.Expr.Range().Ptr(), "Invalid metrics_file", "metrics_file must be an absolute path, got %q.", s)
			}
			r.MetricsFile = s
		}
	}
	if at := a["inhibit_shutdown"]; at != nil {
		if v, ok := e.evalBool(at, ctx); ok {
			r.InhibitShutdown = v
		}
	}
	if at := a["parallel"]; at != nil {
		if v, ok := e.evalInt(at, ctx); ok {
			if v < 1 {
				e.errorf(at.Expr.Range().Ptr(), "Invalid parallel", "parallel is how many jobs run at once and must be at least 1, got %d.", v)
			}
			r.Parallel = v
		}
	}
}

// instanceKey is one instance of a block: its for_each key and each value,
// or the zero value for a block without for_each.
type instanceKey struct {
	key  string
	each *eachVal
}

// expand expands a block's for_each (nil: one instance). ok is false
// when for_each is invalid (the diagnostic is recorded).
func (e *evaluator) expand(forEach *hcl.Attribute, ctx *hcl.EvalContext) (insts []instanceKey, isForEach, ok bool) {
	if forEach == nil {
		return []instanceKey{{}}, false, true
	}
	keys, vals, ok := e.forEachKeys(forEach, ctx)
	if !ok {
		return nil, true, false
	}
	for _, k := range keys {
		insts = append(insts, instanceKey{key: k, each: &eachVal{key: cty.StringVal(k), value: vals[k]}})
	}
	return insts, true, true
}

// forEachKeys evaluates a for_each expression into ordered keys and values.
func (e *evaluator) forEachKeys(a *hcl.Attribute, ctx *hcl.EvalContext) ([]string, map[string]cty.Value, bool) {
	v, ds := a.Expr.Value(ctx)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return nil, nil, false
	}
	rng := a.Expr.Range().Ptr()
	if v.IsNull() || !v.IsWhollyKnown() {
		e.errorf(rng, "Invalid for_each value", "for_each must be a known map or set of strings, not null.")
		return nil, nil, false
	}
	vals := map[string]cty.Value{}
	var keys []string
	t := v.Type()
	switch {
	case t.IsMapType() || t.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			keys = append(keys, k.AsString())
			vals[k.AsString()] = ev
		}
	case t.IsSetType() || t.IsListType() || t.IsTupleType():
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.Type() != cty.String || ev.IsNull() {
				e.errorf(rng, "Invalid for_each value", "A list or set given to for_each must hold strings; found a %s.", ev.Type().FriendlyName())
				return nil, nil, false
			}
			s := ev.AsString()
			if _, dup := vals[s]; dup {
				e.errorf(rng, "Invalid for_each value", "for_each holds %q twice; each key must be unique.", s)
				return nil, nil, false
			}
			keys = append(keys, s)
			vals[s] = ev
		}
	default:
		e.errorf(rng, "Invalid for_each value", "for_each must be a map, or a set or list of strings; got a %s.", t.FriendlyName())
		return nil, nil, false
	}
	sort.Strings(keys)
	return keys, vals, true
}

func instanceAddress(base, key string, forEach bool) string {
	if !forEach {
		return base
	}
	return fmt.Sprintf("%s[%q]", base, key)
}

func (e *evaluator) evalPluginBlock(n *node) {
	kind := kindOf[n.kind]
	b := &Block{Kind: kind, TypeName: n.block.Labels[0], Name: n.block.Labels[1], DeclRange: n.block.DefRange}
	base := e.evalContext(nil)

	insts, forEach, ok := e.expand(n.meta.Attributes["for_each"], base)
	if !ok {
		return
	}
	b.ForEach = forEach

	refVals := map[string]cty.Value{}
	for _, in := range insts {
		ctx := e.evalContext(in.each)
		addr := instanceAddress(b.Address(), in.key, b.ForEach)
		v, ds := hcldec.Decode(n.remain, n.spec, ctx)
		e.diags = append(e.diags, ds...)
		if ds.HasErrors() {
			continue
		}
		instance := &Instance{Block: b, Address: addr, Key: in.key, Config: v}
		if n.kind == "target" {
			e.evalTargetMeta(n, instance, ctx)
		}
		e.validateInstance(n, instance)
		b.Instances = append(b.Instances, instance)
		e.instances[addr] = instance
		refVals[in.key] = withAddress(v, addr)
	}

	if e.blockVals[n.kind] == nil {
		e.blockVals[n.kind] = map[string]map[string]cty.Value{}
	}
	if e.blockVals[n.kind][b.TypeName] == nil {
		e.blockVals[n.kind][b.TypeName] = map[string]cty.Value{}
	}
	if b.ForEach {
		e.blockVals[n.kind][b.TypeName][b.Name] = cty.ObjectVal(refVals)
	} else if v, ok := refVals[""]; ok {
		e.blockVals[n.kind][b.TypeName][b.Name] = v
	}

	switch kind {
	case schema.KindSource:
		e.cfg.Sources = append(e.cfg.Sources, b)
	case schema.KindTarget:
		e.cfg.Targets = append(e.cfg.Targets, b)
	case schema.KindHook:
		e.cfg.Hooks = append(e.cfg.Hooks, b)
	case schema.KindNotify:
		e.cfg.Notifiers = append(e.cfg.Notifiers, b)
	}
}

func withAddress(v cty.Value, addr string) cty.Value {
	attrs := map[string]cty.Value{}
	if !v.IsNull() {
		for k, av := range v.AsValueMap() {
			attrs[k] = av
		}
	}
	attrs[AddressAttr] = cty.StringVal(addr)
	return cty.ObjectVal(attrs)
}

func (e *evaluator) evalTargetMeta(n *node, in *Instance, ctx *hcl.EvalContext) {
	if a := n.meta.Attributes["hooks"]; a != nil {
		in.Hooks = e.evalRefList(a, ctx, "hook")
	}
	if a := n.meta.Attributes["password_file"]; a != nil {
		if p, ok := e.evalString(a, ctx); ok {
			if !filepath.IsAbs(p) {
				p = filepath.Join(e.m.Dir, p)
			}
			in.PasswordFile = p
		}
	}
	if a := n.meta.Attributes["min_free_ratio"]; a != nil {
		v, ok := e.evalNumber(a, ctx)
		if ok && v < 0 {
			e.errorf(a.Expr.Range().Ptr(), "Invalid min_free_ratio", "min_free_ratio must not be negative, got %g.", v)
		}
		in.MinFreeRatio = v
	}
}

// validateInstance asks the plugin to check the decoded configuration and
// points each of its findings at the attribute it names.
func (e *evaluator) validateInstance(n *node, in *Instance) {
	if e.opts.Resolver == nil {
		return
	}
	pds, err := e.opts.Resolver.ValidateBlock(e.ctx, kindOf[n.kind], n.block.Labels[0], in.Config)
	if err != nil {
		e.errorf(n.block.DefRange.Ptr(), "Cannot validate "+n.kind, "%s: %s", in.Address, err)
		return
	}
	for _, pd := range pds {
		sev := hcl.DiagError
		if pd.Severity == schema.Warning {
			sev = hcl.DiagWarning
		}
		// The plugin knows the attribute; the address says which block.
		detail := strings.TrimSpace(fmt.Sprintf("In %s. %s", in.Address, pd.Detail))
		rng := rangeForPath(n.remain, pd.Path, n.block.DefRange)
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: sev, Summary: pd.Summary, Detail: detail, Subject: &rng})
	}
}

// rangeForPath finds the expression an attribute path names in a body,
// e.g. ["expect", "uid"]; numeric elements pick one of repeated blocks.
func rangeForPath(body hcl.Body, path []string, fallback hcl.Range) hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok || len(path) == 0 {
		return fallback
	}
	if a, ok := sb.Attributes[path[0]]; ok {
		return a.Expr.Range()
	}
	var blocks []*hclsyntax.Block
	for _, blk := range sb.Blocks {
		if blk.Type == path[0] {
			blocks = append(blocks, blk)
		}
	}
	if len(blocks) == 0 {
		return fallback
	}
	rest := path[1:]
	idx := 0
	if len(rest) > 0 {
		var i int
		if _, err := fmt.Sscanf(rest[0], "%d", &i); err == nil && i >= 0 && i < len(blocks) {
			idx, rest = i, rest[1:]
		}
	}
	return rangeForPath(blocks[idx].Body, rest, blocks[idx].TypeRange)
}

// evalRefList evaluates a list of references to blocks of one kind (hooks,
// notify) into the instances they name.
func (e *evaluator) evalRefList(a *hcl.Attribute, ctx *hcl.EvalContext, kind string) []*Instance {
	v, ds := a.Expr.Value(ctx)
	e.diags = append(e.diags, ds...)
	if ds.HasErrors() {
		return nil
	}
	rng := a.Expr.Range().Ptr()
	if v.IsNull() {
		return nil
	}
	t := v.Type()
	if !(t.IsListType() || t.IsTupleType() || t.IsSetType()) {
		e.errorf(rng, "Incorrect attribute value type", "%s must be a list of %s references, e.g. [%s.TYPE.NAME].", a.Name, kind, kind)
		return nil
	}
	var out []*Instance
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if in := e.refInstance(ev, rng, a.Name, kind); in != nil {
			out = append(out, in)
		}
	}
	return out
}

// refInstance resolves a value produced by a reference such as
// source.files.docs (or each.value) to the instance it stands for.
func (e *evaluator) refInstance(v cty.Value, rng *hcl.Range, attr, kind string) *Instance {
	addr, ok := refAddress(v)
	if !ok {
		e.errorf(rng, "Invalid reference", "%s must refer to one %s block, e.g. %s.TYPE.NAME; got a %s.", attr, kind, kind, v.Type().FriendlyName())
		return nil
	}
	if !strings.HasPrefix(addr, kind+".") {
		e.errorf(rng, "Invalid reference", "%s must refer to a %s block, but %s is not one.", attr, kind, addr)
		return nil
	}
	in := e.instances[addr]
	if in == nil {
		e.errorf(rng, "Invalid reference", "%s refers to %s, which could not be evaluated.", attr, addr)
	}
	return in
}

func refAddress(v cty.Value) (string, bool) {
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() || !v.Type().HasAttribute(AddressAttr) {
		return "", false
	}
	a := v.GetAttr(AddressAttr)
	if a.Type() != cty.String || a.IsNull() {
		return "", false
	}
	return a.AsString(), true
}
