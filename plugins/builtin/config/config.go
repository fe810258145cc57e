// Package config is what the built-in plugins share about their
// configuration: the version they report and typed readers for the cty
// object a block's configuration arrives as.
//
// It lives apart from package builtin because builtin imports every
// built-in plugin, and the plugins need these helpers.
//
// The readers never panic: an absent attribute, a null object or a value
// of an unexpected type reads as "not set" or as an error, since a plugin
// must survive whatever a host (or a test) sends it. During validation
// values may still be unknown (they depend on something evaluated later);
// the readers report that as "not set" too, and IsUnknown lets a Validate
// skip checks it cannot make yet.
package config

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/policies"
)

// Version is the version every built-in plugin reports: they are built
// with the runner, so they share its release.
const Version = "0.1.0"

// Object reads the attributes of a configuration object.
type Object struct {
	v cty.Value
}

// New wraps a configuration value. Marks (such as sensitive) are removed:
// the plugin needs the values, and never prints the sensitive ones.
func New(v cty.Value) Object {
	if v == cty.NilVal {
		return Object{v: cty.NullVal(cty.DynamicPseudoType)}
	}
	v, _ = v.UnmarkDeep()
	return Object{v: v}
}

// Attr returns the attribute's value, or a null value if the object is
// null or unknown or has no such attribute.
func (o Object) Attr(name string) cty.Value {
	if o.v.IsNull() || !o.v.IsKnown() || !o.v.Type().IsObjectType() || !o.v.Type().HasAttribute(name) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return o.v.GetAttr(name)
}

// IsUnknown reports whether the attribute's value, or part of it, is not
// known yet.
func (o Object) IsUnknown(name string) bool {
	if !o.v.IsKnown() {
		return true
	}
	return !o.Attr(name).IsWhollyKnown()
}

// IsSet reports whether the attribute has a known, non-null value.
func (o Object) IsSet(name string) bool {
	a := o.Attr(name)
	return !a.IsNull() && a.IsWhollyKnown()
}

// String returns a string attribute; ok is false if it is not set.
func (o Object) String(name string) (s string, ok bool) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsKnown() {
		return "", false
	}
	c, err := convert.Convert(a, cty.String)
	if err != nil || c.IsNull() {
		return "", false
	}
	return c.AsString(), true
}

// StringOr returns a string attribute, or def if it is not set.
func (o Object) StringOr(name, def string) string {
	if s, ok := o.String(name); ok {
		return s
	}
	return def
}

// Bool returns a bool attribute; ok is false if it is not set.
func (o Object) Bool(name string) (b, ok bool) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsKnown() {
		return false, false
	}
	c, err := convert.Convert(a, cty.Bool)
	if err != nil || c.IsNull() {
		return false, false
	}
	return c.True(), true
}

// Int returns a whole-number attribute; ok is false if it is not set, and
// err says why a set value is not a whole number that fits an int64.
func (o Object) Int(name string) (n int64, ok bool, err error) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsKnown() {
		return 0, false, nil
	}
	c, err := convert.Convert(a, cty.Number)
	if err != nil || c.IsNull() {
		return 0, false, fmt.Errorf("must be a number")
	}
	bf := c.AsBigFloat()
	if !bf.IsInt() {
		return 0, true, fmt.Errorf("must be a whole number, not %s", bf.Text('g', -1))
	}
	i, acc := bf.Int64()
	if acc != big.Exact {
		return 0, true, fmt.Errorf("%s is out of range", bf.Text('g', -1))
	}
	return i, true, nil
}

// StringList returns a list (or set, or tuple) of strings; ok is false if
// the attribute is not set or not yet wholly known. err reports a null or
// non-string element, naming its index.
func (o Object) StringList(name string) (list []string, ok bool, err error) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsWhollyKnown() {
		return nil, false, nil
	}
	if !a.CanIterateElements() || a.Type().IsMapType() || a.Type().IsObjectType() {
		return nil, true, fmt.Errorf("must be a list of strings")
	}
	list = []string{}
	for it := a.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.IsNull() {
			return nil, true, fmt.Errorf("element %d is null", len(list))
		}
		c, err := convert.Convert(el, cty.String)
		if err != nil {
			return nil, true, fmt.Errorf("element %d must be a string", len(list))
		}
		list = append(list, c.AsString())
	}
	return list, true, nil
}

// StringMap returns a map (or object) of strings; ok is false if it is not
// set or not yet wholly known.
func (o Object) StringMap(name string) (m map[string]string, ok bool, err error) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsWhollyKnown() {
		return nil, false, nil
	}
	if !a.Type().IsMapType() && !a.Type().IsObjectType() {
		return nil, true, fmt.Errorf("must be a map of strings")
	}
	m = map[string]string{}
	for it := a.ElementIterator(); it.Next(); {
		k, el := it.Element()
		key := k.AsString()
		if el.IsNull() {
			return nil, true, fmt.Errorf("%q is null", key)
		}
		c, err := convert.Convert(el, cty.String)
		if err != nil {
			return nil, true, fmt.Errorf("%q must be a string", key)
		}
		m[key] = c.AsString()
	}
	return m, true, nil
}

// Block returns a nested single block; ok is false if it is absent.
func (o Object) Block(name string) (Object, bool) {
	a := o.Attr(name)
	if a.IsNull() || !a.IsKnown() || !a.Type().IsObjectType() {
		return Object{v: cty.NullVal(cty.DynamicPseudoType)}, false
	}
	return Object{v: a}, true
}

// Duration reads a duration attribute such as timeout = "5m", or def when
// it is not set. Only fixed units make sense for a timeout, so months and
// years are refused, and so is zero.
func (o Object) Duration(name, def string) (time.Duration, error) {
	text := o.StringOr(name, def)
	d, err := policies.ParseDuration(text)
	if err != nil {
		return 0, err
	}
	std, ok := d.Std()
	if !ok {
		return 0, fmt.Errorf("%q has months or years; use s, m, h, d or w", text)
	}
	if std <= 0 {
		return 0, fmt.Errorf("%q must be longer than zero", text)
	}
	return std, nil
}

// Label names a configured block the way an operator wrote it, for error
// messages: `target nas "home"`, or `source files "etc"["a"]` for an
// instance of a for_each block.
func Label(kind schema.Kind, inst sdk.Instance) string {
	name := strings.TrimPrefix(inst.Address, kind.String()+"."+inst.TypeName+".")
	if name == "" {
		return fmt.Sprintf("%s %s", kind, inst.TypeName)
	}
	// An instance key stays outside the quotes, as it is written in an
	// address: target nas "site"["blog"].
	key := ""
	if i := strings.IndexByte(name, '['); i > 0 {
		name, key = name[:i], name[i:]
	}
	return fmt.Sprintf("%s %s %q%s", kind, inst.TypeName, name, key)
}

// Build makes the configuration object a host would send for a block with
// schema b: each attribute in attrs converted to its schema type, every
// other attribute and block null. Nested single blocks are given as
// objects. It is for tests and for callers that assemble configurations
// in Go.
func Build(b *schema.Block, attrs map[string]cty.Value) (cty.Value, error) {
	known := map[string]bool{}
	vals := map[string]cty.Value{}
	for _, a := range b.Attributes {
		known[a.Name] = true
		v, ok := attrs[a.Name]
		if !ok {
			vals[a.Name] = cty.NullVal(a.Type)
			continue
		}
		c, err := convert.Convert(v, a.Type)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", a.Name, err)
		}
		vals[a.Name] = c
	}
	ty := b.ImpliedType()
	for _, nb := range b.Blocks {
		known[nb.TypeName] = true
		want := ty.AttributeType(nb.TypeName)
		v, ok := attrs[nb.TypeName]
		if !ok {
			vals[nb.TypeName] = cty.NullVal(want)
			continue
		}
		if nb.Nesting == schema.NestingSingle && v.Type().IsObjectType() && !v.IsNull() {
			inner := map[string]cty.Value{}
			for it := v.ElementIterator(); it.Next(); {
				k, el := it.Element()
				inner[k.AsString()] = el
			}
			built, err := Build(nb.Block, inner)
			if err != nil {
				return cty.NilVal, fmt.Errorf("%s.%w", nb.TypeName, err)
			}
			vals[nb.TypeName] = built
			continue
		}
		c, err := convert.Convert(v, want)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s: %w", nb.TypeName, err)
		}
		vals[nb.TypeName] = c
	}
	var unknown []string
	for name := range attrs {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return cty.NilVal, fmt.Errorf("unsupported argument %s", strings.Join(unknown, ", "))
	}
	return cty.ObjectVal(vals), nil
}

// MustBuild is Build for tests; it panics on an error.
func MustBuild(b *schema.Block, attrs map[string]cty.Value) cty.Value {
	v, err := Build(b, attrs)
	if err != nil {
		panic(err)
	}
	return v
}
