package hcl

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// VarEnvPrefix: RUNNER_VAR_name=value in the environment sets var.name.
const VarEnvPrefix = "RUNNER_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

type variableDecl struct {
	name        string
	typ         cty.Type
	def         cty.Value // cty.NilVal: required
	sensitive   bool
	validations []*hcl.Block
	declRange   hcl.Range
}

// assigned is one value given to a variable, and where it came from.
type assigned struct {
	val   cty.Value
	rng   *hcl.Range // nil for the command line and the environment
	where string
}

// evalVariables decodes the variable blocks and assigns each its value:
// the default, then RUNNER_VAR_name, then -var-file files in order, then
// -var flags in order; the last one wins.
func (m *Module) evalVariables(opts Options, fns map[string]function.Function) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decls := map[string]*variableDecl{}
	var order []string
	for _, b := range m.variables {
		d, ds := decodeVariable(b)
		diags = append(diags, ds...)
		if d != nil {
			decls[d.name] = d
			order = append(order, d.name)
		}
	}
	given := map[string]assigned{}

	for name := range decls {
		raw, ok := opts.getenv(VarEnvPrefix + name)
		if !ok {
			continue
		}
		v, ds := parseRawValue(raw, decls[name].typ, VarEnvPrefix+name)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			given[name] = assigned{val: v, where: "the environment variable " + VarEnvPrefix + name}
		}
	}
	for _, path := range opts.VarFiles {
		src, err := os.ReadFile(path)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read variables file", Detail: fmt.Sprintf("-var-file %s: %s", path, pathErrText(err))})
			continue
		}
		f, ds := m.parser.ParseHCL(src, path)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		attrs, ds := f.Body.JustAttributes()
		diags = append(diags, ds...)
		for name, a := range attrs {
			if decls[name] == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Value for undeclared variable",
					Detail:   fmt.Sprintf("The variables file sets %q, but the configuration declares no variable %q.", name, name),
					Subject:  a.NameRange.Ptr(),
				})
				continue
			}
			v, ds := a.Expr.Value(&hcl.EvalContext{Functions: fns})
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				given[name] = assigned{val: v, rng: a.Expr.Range().Ptr(), where: path}
			}
		}
	}
	for _, kv := range opts.Vars {
		name, raw, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option", Detail: fmt.Sprintf("-var %q: want -var NAME=VALUE.", kv)})
			continue
		}
		d := decls[name]
		if d == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable", Detail: fmt.Sprintf("-var sets %q, but the configuration declares no variable %q.", name, name)})
			continue
		}
		v, ds := parseRawValue(raw, d.typ, "-var "+name)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			given[name] = assigned{val: v, where: "-var " + name}
		}
	}

	vals := map[string]cty.Value{}
	for _, name := range order {
		d := decls[name]
		a, ok := given[name]
		if !ok {
			if d.def == cty.NilVal {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "No value for required variable",
					Detail:   fmt.Sprintf("var.%s has no default. Set it with -var %s=VALUE, a -var-file, or %s%s in the environment.", name, name, VarEnvPrefix, name),
					Subject:  d.declRange.Ptr(),
				})
				continue
			}
			a = assigned{val: d.def, where: "its default"}
		}
		v, err := convert.Convert(a.val, d.typ)
		if err != nil {
			subj := a.rng
			if subj == nil {
				subj = d.declRange.Ptr()
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid value for variable",
				Detail:   fmt.Sprintf("The value of var.%s from %s is not a %s: %s.", name, a.where, d.typ.FriendlyName(), err),
				Subject:  subj,
			})
			continue
		}
		if ds := checkValidations(d, v, a, fns); ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		vals[name] = v
	}
	return vals, diags
}

func decodeVariable(b *hcl.Block) (*variableDecl, hcl.Diagnostics) {
	content, diags := b.Body.Content(variableSchema)
	d := &variableDecl{name: b.Labels[0], typ: cty.DynamicPseudoType, declRange: b.DefRange}
	if a, ok := content.Attributes["type"]; ok {
		t, ds := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			d.typ = t
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		v, ds := a.Expr.Value(nil)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			cv, err := convert.Convert(v, d.typ)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("The default of var.%s is not a %s: %s.", d.name, d.typ.FriendlyName(), err),
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				d.def = cv
			}
		}
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		v, ds := a.Expr.Value(nil)
		diags = append(diags, ds...)
		if !ds.HasErrors() && v.Type() == cty.Bool && v.IsKnown() && !v.IsNull() {
			d.sensitive = v.True()
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		_, ds := a.Expr.Value(nil)
		diags = append(diags, ds...)
	}
	for _, vb := range content.Blocks {
		_, ds := vb.Body.Content(validationSchema)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			d.validations = append(d.validations, vb)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return d, diags
}

// parseRawValue reads a value given as text on the command line or in the
// environment: taken literally for strings, numbers and bools, as an HCL
// expression for collections (so lists and maps can be given).
func parseRawValue(raw string, typ cty.Type, where string) (cty.Value, hcl.Diagnostics) {
	if typ.IsPrimitiveType() || typ == cty.DynamicPseudoType {
		// Conversion from the string reports a wrong number or bool
		// against the variable's type.
		return cty.StringVal(raw), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), where, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return expr.Value(nil)
}

func checkValidations(d *variableDecl, v cty.Value, a assigned, fns map[string]function.Function) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{d.name: v})},
		Functions: fns,
	}
	for _, vb := range d.validations {
		content, _ := vb.Body.Content(validationSchema)
		cond := content.Attributes["condition"]
		msgAttr := content.Attributes["error_message"]
		for _, t := range cond.Expr.Variables() {
			if t.RootName() != "var" || len(t) < 2 || attrName(t[1]) != d.name {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid reference in variable validation",
					Detail:   fmt.Sprintf("The condition of a validation of var.%s may refer only to var.%s.", d.name, d.name),
					Subject:  t.SourceRange().Ptr(),
				})
			}
		}
		if diags.HasErrors() {
			return diags
		}
		ok, ds := cond.Expr.Value(ctx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			return diags
		}
		if ok.Type() != cty.Bool || ok.IsNull() || !ok.IsKnown() {
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid validation condition", Detail: "The condition must be true or false.", Subject: cond.Expr.Range().Ptr()})
		}
		if ok.True() {
			continue
		}
		msg, ds := msgAttr.Expr.Value(ctx)
		text := "the value is not valid"
		if !ds.HasErrors() && msg.Type() == cty.String && !msg.IsNull() && msg.IsKnown() {
			text = msg.AsString()
		}
		subj := a.rng
		if subj == nil {
			subj = cond.Expr.Range().Ptr()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("var.%s (from %s): %s", d.name, a.where, text),
			Subject:  subj,
		})
	}
	return diags
}

func attrName(t hcl.Traverser) string {
	switch s := t.(type) {
	case hcl.TraverseAttr:
		return s.Name
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString()
		}
	}
	return ""
}
