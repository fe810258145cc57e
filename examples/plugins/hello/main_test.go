package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

// These tests run the plugin through sdktest: the real host-side client,
// over gRPC, in this test process.

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func commandConfigVal(argv ...string) cty.Value {
	args := make([]cty.Value, len(argv))
	for i, a := range argv {
		args[i] = cty.StringVal(a)
	}
	list := cty.ListValEmpty(cty.String)
	if len(args) > 0 {
		list = cty.ListVal(args)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"command": list,
		"dir":     cty.NullVal(cty.String),
		"env":     cty.MapVal(map[string]cty.Value{"GREETING": cty.StringVal("hi")}),
		"item":    cty.NullVal(cty.String),
	})
}

func TestSchema(t *testing.T) {
	c := sdktest.Start(t, New())
	s, err := c.GetSchema(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.PluginName != "hello" || s.BlockType(schema.KindSource, "command") == nil {
		t.Fatalf("schema %+v", s)
	}
	if _, ok := s.Function("greeting"); !ok {
		t.Fatal("no greeting function")
	}
}

func TestGreeting(t *testing.T) {
	c := sdktest.Start(t, New())
	v, err := c.CallFunction(ctxT(t), "greeting", []cty.Value{cty.StringVal("Ada")})
	if err != nil || v.AsString() != "Hello, Ada!" {
		t.Fatalf("got %#v, %v", v, err)
	}
	_, err = c.CallFunction(ctxT(t), "greeting", []cty.Value{cty.StringVal(" ")})
	var ae *sdk.ArgError
	if !errors.As(err, &ae) || ae.Index != 0 {
		t.Fatalf("got %v", err)
	}
}

func TestValidate(t *testing.T) {
	c := sdktest.Start(t, New())
	cfg := cty.ObjectVal(map[string]cty.Value{
		"command": cty.ListValEmpty(cty.String),
		"dir":     cty.StringVal("relative"),
		"env":     cty.MapVal(map[string]cty.Value{"BAD-NAME": cty.StringVal("x")}),
		"item":    cty.StringVal("a/b"),
	})
	diags, err := c.ValidateConfig(ctxT(t), schema.KindSource, "command", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range diags {
		paths = append(paths, strings.Join(d.Path, "."))
	}
	if strings.Join(paths, " ") != "command dir env item" {
		t.Fatalf("diagnostics %+v", diags)
	}
	// Unknown values (not yet evaluated) are not complained about.
	unknown := cty.UnknownVal(cfg.Type())
	if diags, err := c.ValidateConfig(ctxT(t), schema.KindSource, "command", unknown); err != nil || len(diags) != 0 {
		t.Fatalf("unknown: %v %v", diags, err)
	}
}

func TestPlanAndCapture(t *testing.T) {
	c := sdktest.Start(t, New())
	ctx := ctxT(t)
	src, err := c.Source(ctx, "command")
	if err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{Address: "source.command.x", Config: commandConfigVal("sh", "-c", `printf '%s' "$GREETING, world"; echo careful >&2`)}

	plan, err := src.PlanCapture(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if want := `would run sh -c 'printf '\''%s'\'' "$GREETING, world"; echo careful >&2'`; plan.Notes[0] != want {
		t.Fatalf("plan note %q", plan.Notes[0])
	}

	rec := &recorder{}
	if err := src.Capture(ctx, inst, rec); err != nil {
		t.Fatal(err)
	}
	if rec.name != "stdout" || rec.data.String() != "hi, world" || !rec.closed {
		t.Fatalf("captured %q into %q (closed %v)", rec.data.String(), rec.name, rec.closed)
	}
	if rec.result == nil || len(rec.result.Warnings) != 1 || !strings.Contains(rec.result.Warnings[0], "careful") {
		t.Fatalf("result %+v", rec.result)
	}

	// A failing command fails the capture, quoting its standard error.
	rec = &recorder{}
	err = src.Capture(ctx, sdk.Instance{Address: "source.command.y", Config: commandConfigVal("sh", "-c", "echo partial; echo no such table >&2; exit 4")}, rec)
	if err == nil || !strings.Contains(err.Error(), "exit status 4: no such table") || rec.err == nil {
		t.Fatalf("got %v (stream error %v)", err, rec.err)
	}

	_, err = src.PlanCapture(ctx, sdk.Instance{Config: commandConfigVal("no-such-program-here")})
	if err == nil || !strings.Contains(err.Error(), "not found in PATH") {
		t.Fatalf("got %v", err)
	}
}

// recorder is a host-side CaptureWriter for one stream item.
type recorder struct {
	name   string
	data   bytes.Buffer
	closed bool
	err    error
	result *sdk.CaptureResult
}

func (r *recorder) Tree(sdk.Item) error { return errors.New("unexpected tree item") }
func (r *recorder) Stream(it sdk.Item) (sdk.StreamWriter, error) {
	r.name = it.Name
	return r, nil
}
func (r *recorder) Done(res sdk.CaptureResult) error { r.result = &res; return nil }
func (r *recorder) Write(p []byte) (int, error)      { return r.data.Write(p) }
func (r *recorder) Close() error                     { r.closed = true; return nil }
func (r *recorder) CloseWithError(err error) error   { r.closed, r.err = true, err; return nil }
