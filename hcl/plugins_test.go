package hcl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/hcl/hcltest"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// The configuration tests use small plugins of their own, with schemas in
// the shape of the built-in ones, so that they test the language and not
// the built-in plugins' current options.

type testBlock struct {
	sch      *schema.Block
	validate func(cty.Value) schema.Diagnostics
}

func (b *testBlock) Schema() *schema.Block { return b.sch }

func (b *testBlock) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	if b.validate == nil {
		return nil
	}
	return b.validate(v)
}

type testSource struct{ testBlock }

func (*testSource) PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error) {
	return &sdk.CapturePlan{}, nil
}
func (*testSource) Capture(context.Context, sdk.Instance, sdk.CaptureWriter) error { return nil }

type testTarget struct{ testBlock }

func (*testTarget) Prepare(context.Context, sdk.Instance, bool) (sdk.Session, error) {
	return nil, fmt.Errorf("not used in configuration tests")
}

type testHook struct{ testBlock }

func (*testHook) Up(context.Context, sdk.HookRequest) ([]string, error)   { return nil, nil }
func (*testHook) Down(context.Context, sdk.HookRequest) ([]string, error) { return nil, nil }

type testNotifier struct{ testBlock }

func (*testNotifier) Notify(context.Context, sdk.Instance, sdk.Notification) error { return nil }

var strList = cty.List(cty.String)

func testPlugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "test",
		Version: "0.0.1",
		Sources: map[string]sdk.Source{
			"files": &testSource{testBlock{sch: &schema.Block{Attributes: []*schema.Attribute{
				{Name: "paths", Type: strList, Required: true},
				{Name: "exclude", Type: strList},
				{Name: "root", Type: cty.String},
			}}, validate: func(v cty.Value) schema.Diagnostics {
				var ds schema.Diagnostics
				for it := v.GetAttr("paths").ElementIterator(); it.Next(); {
					_, p := it.Element()
					if !filepath.IsAbs(p.AsString()) {
						ds = append(ds, schema.Errorf([]string{"paths"}, "paths must be absolute, got %q", p.AsString()))
					}
				}
				return ds
			}}},
		},
		Targets: map[string]sdk.Target{
			// "vault" declares an attribute runner reserves on targets.
			"vault": &testTarget{testBlock{sch: &schema.Block{Attributes: []*schema.Attribute{
				{Name: "path", Type: cty.String, Required: true},
				{Name: "password_file", Type: cty.String},
			}}}},
			"nas": &testTarget{testBlock{sch: &schema.Block{
				Attributes: []*schema.Attribute{
					{Name: "path", Type: cty.String, Required: true},
					{Name: "mount", Type: cty.String},
				},
				Blocks: []*schema.NestedBlock{{TypeName: "expect", Nesting: schema.NestingSingle, Block: &schema.Block{
					Attributes: []*schema.Attribute{{Name: "uid", Type: cty.Number}, {Name: "gid", Type: cty.Number}},
				}}},
			}, validate: func(v cty.Value) schema.Diagnostics {
				var ds schema.Diagnostics
				if p := v.GetAttr("path").AsString(); !filepath.IsAbs(p) {
					ds = append(ds, schema.Errorf([]string{"path"}, "target path must be absolute, got %q", p))
				}
				if e := v.GetAttr("expect"); !e.IsNull() {
					if uid := e.GetAttr("uid"); !uid.IsNull() && uid.LessThan(cty.Zero).True() {
						ds = append(ds, schema.Errorf([]string{"expect", "uid"}, "uid must not be negative"))
					}
				}
				return ds
			}}},
		},
		Hooks: map[string]sdk.Hook{
			"exec": &testHook{testBlock{sch: &schema.Block{Attributes: []*schema.Attribute{
				{Name: "before", Type: strList},
				{Name: "after", Type: strList},
				{Name: "timeout", Type: cty.String},
			}}}},
		},
		Notifiers: map[string]sdk.Notifier{
			"email": &testNotifier{testBlock{sch: &schema.Block{Attributes: []*schema.Attribute{
				{Name: "to", Type: strList, Required: true},
				{Name: "password_file", Type: cty.String, Sensitive: true},
			}}}},
		},
		Functions: map[string]sdk.Function{
			"list_sites": {
				Spec: schema.Function{Name: "list_sites", Params: []schema.Parameter{{Name: "root", Type: cty.String}}, ReturnType: cty.Map(cty.String)},
				Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
					root := args[0].AsString()
					entries, err := os.ReadDir(root)
					if err != nil {
						return cty.NilVal, &sdk.ArgError{Index: 0, Err: fmt.Errorf("read %s: %w", root, err)}
					}
					sites := map[string]cty.Value{}
					var names []string
					for _, e := range entries {
						if e.IsDir() {
							names = append(names, e.Name())
							sites[e.Name()] = cty.StringVal(filepath.Join(root, e.Name()))
						}
					}
					sort.Strings(names)
					if len(sites) == 0 {
						return cty.MapValEmpty(cty.String), nil
					}
					return cty.MapVal(sites), nil
				},
			},
		},
	}
}

func testResolver() *hcltest.Resolver { return hcltest.New(testPlugin()) }
