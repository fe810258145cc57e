// Package hcltest resolves plugin block types and functions in-process,
// straight from *sdk.Plugin values, so configuration tests can use the real
// built-in plugins' schemas and checks without starting processes. The
// out-of-process path is what plugins/host provides and e2e tests cover.
package hcltest

import (
	"context"
	"fmt"
	"sort"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Resolver is an in-process config.PluginResolver.
type Resolver struct {
	plugins []*sdk.Plugin
}

var _ config.PluginResolver = (*Resolver)(nil)

// New returns a resolver over the given plugins.
func New(plugins ...*sdk.Plugin) *Resolver { return &Resolver{plugins: plugins} }

func (r *Resolver) find(kind schema.Kind, typeName string) sdk.Schemer {
	for _, p := range r.plugins {
		var s sdk.Schemer
		switch kind {
		case schema.KindSource:
			if v, ok := p.Sources[typeName]; ok {
				s = v
			}
		case schema.KindTarget:
			if v, ok := p.Targets[typeName]; ok {
				s = v
			}
		case schema.KindHook:
			if v, ok := p.Hooks[typeName]; ok {
				s = v
			}
		case schema.KindNotify:
			if v, ok := p.Notifiers[typeName]; ok {
				s = v
			}
		}
		if s != nil {
			return s
		}
	}
	return nil
}

// BlockSchema implements config.PluginResolver.
func (r *Resolver) BlockSchema(_ context.Context, kind schema.Kind, typeName string) (*schema.Block, error) {
	s := r.find(kind, typeName)
	if s == nil {
		return nil, fmt.Errorf("%s %q: %w", kind, typeName, config.ErrNotProvided)
	}
	return s.Schema(), nil
}

// BlockTypes implements config.PluginResolver.
func (r *Resolver) BlockTypes(_ context.Context, kind schema.Kind) []string {
	var out []string
	for _, p := range r.plugins {
		var names []string
		switch kind {
		case schema.KindSource:
			for n := range p.Sources {
				names = append(names, n)
			}
		case schema.KindTarget:
			for n := range p.Targets {
				names = append(names, n)
			}
		case schema.KindHook:
			for n := range p.Hooks {
				names = append(names, n)
			}
		case schema.KindNotify:
			for n := range p.Notifiers {
				names = append(names, n)
			}
		}
		out = append(out, names...)
	}
	sort.Strings(out)
	return out
}

// Function implements config.PluginResolver.
func (r *Resolver) Function(ctx context.Context, name string) (function.Function, error) {
	for _, p := range r.plugins {
		if f, ok := p.Functions[name]; ok {
			return CtyFunction(ctx, f), nil
		}
	}
	return function.Function{}, fmt.Errorf("function %s: %w", name, config.ErrNotProvided)
}

// ValidateBlock implements config.PluginResolver.
func (r *Resolver) ValidateBlock(ctx context.Context, kind schema.Kind, typeName string, cfg cty.Value) (schema.Diagnostics, error) {
	s := r.find(kind, typeName)
	if s == nil {
		return nil, fmt.Errorf("%s %q: %w", kind, typeName, config.ErrNotProvided)
	}
	if v, ok := s.(sdk.Validator); ok {
		return v.Validate(ctx, cfg), nil
	}
	return nil, nil
}

// CtyFunction wraps a plugin function as a go-cty function.
func CtyFunction(ctx context.Context, f sdk.Function) function.Function {
	spec := &function.Spec{
		Description: f.Spec.Description,
		Type:        function.StaticReturnType(f.Spec.ReturnType),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Impl(ctx, args)
			if ae, ok := err.(*sdk.ArgError); ok {
				return cty.NilVal, function.NewArgError(ae.Index, ae.Err)
			}
			return v, err
		},
	}
	for _, p := range f.Spec.Params {
		spec.Params = append(spec.Params, function.Parameter{Name: p.Name, Type: p.Type, AllowNull: p.AllowNull})
	}
	if vp := f.Spec.Variadic; vp != nil {
		spec.VarParam = &function.Parameter{Name: vp.Name, Type: vp.Type, AllowNull: vp.AllowNull}
	}
	return function.New(spec)
}
