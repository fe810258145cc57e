package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Module is a parsed but not yet evaluated configuration directory.
type Module struct {
	Dir    string
	parser *hclparse.Parser

	runner    *hcl.Block
	variables []*hcl.Block
	locals    []*hcl.Attribute
	plugins   []*hcl.Block
	plugBlks  map[string][]*hcl.Block // "source", "target", "hook", "notify"
	policies  []*hcl.Block
	jobs      []*hcl.Block
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "runner"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "hook", LabelNames: []string{"type", "name"}},
		{Type: "target", LabelNames: []string{"type", "name"}},
		{Type: "policy", LabelNames: []string{"name"}},
		{Type: "source", LabelNames: []string{"type", "name"}},
		{Type: "notify", LabelNames: []string{"type", "name"}},
		{Type: "job", LabelNames: []string{"name"}},
	},
}

// Files returns the parsed files by name, for rendering diagnostics with
// source snippets.
func (m *Module) Files() map[string]*hcl.File {
	if m == nil || m.parser == nil {
		return nil
	}
	return m.parser.Files()
}

// ConfigFiles lists the *.hcl files of dir in name order.
func ConfigFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	sort.Strings(files)
	return files, nil
}

// Parse reads every *.hcl file of dir and sorts the top-level blocks. It
// checks structure only: block names, labels and duplicates.
func Parse(dir string) (*Module, hcl.Diagnostics) {
	m := &Module{Dir: dir, parser: hclparse.NewParser(), plugBlks: map[string][]*hcl.Block{}}
	paths, err := ConfigFiles(dir)
	if err != nil {
		return m, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration directory",
			Detail:   fmt.Sprintf("%s: %s. Point -C at the directory that holds your *.hcl files.", dir, pathErrText(err)),
		}}
	}
	if len(paths) == 0 {
		return m, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("%s holds no *.hcl files.", dir),
		}}
	}
	var diags hcl.Diagnostics
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration file", Detail: fmt.Sprintf("%s: %s", p, pathErrText(err))})
			continue
		}
		f, fdiags := m.parser.ParseHCL(src, p)
		diags = append(diags, fdiags...)
		if f == nil || fdiags.HasErrors() {
			continue
		}
		content, cdiags := f.Body.Content(rootSchema)
		diags = append(diags, cdiags...)
		diags = append(diags, m.addBlocks(content.Blocks)...)
	}
	diags = append(diags, m.checkDuplicates()...)
	return m, diags
}

func (m *Module) addBlocks(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range blocks {
		if d := checkLabels(b); d != nil {
			diags = append(diags, d)
			continue
		}
		switch b.Type {
		case "runner":
			if m.runner != nil {
				diags = append(diags, duplicate("runner block", "", b.DefRange, m.runner.DefRange))
				continue
			}
			m.runner = b
		case "variable":
			m.variables = append(m.variables, b)
		case "locals":
			attrs, ds := b.Body.JustAttributes()
			diags = append(diags, ds...)
			sorted := make([]*hcl.Attribute, 0, len(attrs))
			for _, a := range attrs {
				sorted = append(sorted, a)
			}
			sort.Slice(sorted, func(i, j int) bool { return sorted[i].Range.Start.Byte < sorted[j].Range.Start.Byte })
			m.locals = append(m.locals, sorted...)
		case "plugin":
			m.plugins = append(m.plugins, b)
		case "hook", "target", "source", "notify":
			m.plugBlks[b.Type] = append(m.plugBlks[b.Type], b)
		case "policy":
			m.policies = append(m.policies, b)
		case "job":
			m.jobs = append(m.jobs, b)
		}
	}
	return diags
}

// checkLabels insists on labels usable in references: an identifier.
func checkLabels(b *hcl.Block) *hcl.Diagnostic {
	for i, l := range b.Labels {
		if !hclsyntax.ValidIdentifier(l) {
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid block label",
				Detail:   fmt.Sprintf("%q is not a valid name for a %s block: names start with a letter or underscore and contain only letters, digits, underscores and dashes.", l, b.Type),
				Subject:  b.LabelRanges[i].Ptr(),
			}
		}
	}
	return nil
}

func duplicate(what, name string, rng, first hcl.Range) *hcl.Diagnostic {
	label := what
	if name != "" {
		label = fmt.Sprintf("%s %s", what, name)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Duplicate " + what,
		Detail:   fmt.Sprintf("A %s was already declared at %s. Names must be unique across all files of the configuration.", label, first),
		Subject:  rng.Ptr(),
	}
}

func (m *Module) checkDuplicates() hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	check := func(key, what, name string, rng hcl.Range) bool {
		if first, ok := seen[key]; ok {
			diags = append(diags, duplicate(what, name, rng, first))
			return false
		}
		seen[key] = rng
		return true
	}
	m.variables = keepUnique(m.variables, func(b *hcl.Block) bool {
		return check("var."+b.Labels[0], "variable", fmt.Sprintf("%q", b.Labels[0]), b.DefRange)
	})
	var locals []*hcl.Attribute
	for _, a := range m.locals {
		if check("local."+a.Name, "local value", fmt.Sprintf("%q", a.Name), a.NameRange) {
			locals = append(locals, a)
		}
	}
	m.locals = locals
	m.plugins = keepUnique(m.plugins, func(b *hcl.Block) bool {
		return check("plugin."+b.Labels[0], "plugin block", fmt.Sprintf("%q", b.Labels[0]), b.DefRange)
	})
	for _, kind := range []string{"hook", "target", "source", "notify"} {
		m.plugBlks[kind] = keepUnique(m.plugBlks[kind], func(b *hcl.Block) bool {
			return check(kind+"."+b.Labels[0]+"."+b.Labels[1], kind+" block", fmt.Sprintf("%q %q", b.Labels[0], b.Labels[1]), b.DefRange)
		})
	}
	m.policies = keepUnique(m.policies, func(b *hcl.Block) bool {
		return check("policy."+b.Labels[0], "policy block", fmt.Sprintf("%q", b.Labels[0]), b.DefRange)
	})
	m.jobs = keepUnique(m.jobs, func(b *hcl.Block) bool {
		return check("job."+b.Labels[0], "job block", fmt.Sprintf("%q", b.Labels[0]), b.DefRange)
	})
	return diags
}

func keepUnique(blocks []*hcl.Block, ok func(*hcl.Block) bool) []*hcl.Block {
	out := blocks[:0]
	for _, b := range blocks {
		if ok(b) {
			out = append(out, b)
		}
	}
	return out
}
