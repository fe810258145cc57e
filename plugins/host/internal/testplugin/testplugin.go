// Package testplugin is a plugin for the host package's tests. One
// definition serves under several names (runner-plugin-alpha,
// runner-plugin-beta, the test host's built-in ...); every type and
// function name starts with the plugin's name so that plugins do not
// overlap unless a test wants them to.
package testplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// MarkerDirEnv names a directory in which every test plugin process leaves
// a file NAME.PID when it starts: proof that it was executed.
const MarkerDirEnv = "RUNNER_TEST_MARKER_DIR"

// Mark leaves the marker of a plugin process, if asked to.
func Mark(name string) {
	dir := os.Getenv(MarkerDirEnv)
	if dir == "" {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s.%d", name, os.Getpid())), nil, 0o644)
}

// NameFromExe derives the plugin name from an executable called
// runner-plugin-NAME.
func NameFromExe(arg0 string) string {
	return strings.TrimPrefix(filepath.Base(arg0), "runner-plugin-")
}

// New returns the test plugin under name. Its source types:
//
//	NAME        captures a tree item and a stream item of size bytes
//	NAME_exit   exits the process (status 3) in the middle of a capture
//	NAME_panic  panics in a goroutine in the middle of a capture
//	NAME_hang   never answers PlanCapture or Capture
//	NAME_log    logs a line through sdk.Logger in PlanCapture
//
// and functions NAME_echo(s) and NAME_hang().
func New(name string) *sdk.Plugin {
	id := strings.ReplaceAll(name, "-", "_")
	return &sdk.Plugin{
		Name:    name,
		Version: "0.0.1-test",
		Sources: map[string]sdk.Source{
			id:            source{mode: ""},
			id + "_exit":  source{mode: "exit"},
			id + "_panic": source{mode: "panic"},
			id + "_hang":  source{mode: "hang"},
			id + "_log":   source{mode: "log"},
		},
		Functions: map[string]sdk.Function{
			id + "_echo": {
				Spec: schema.Function{
					Params:     []schema.Parameter{{Name: "s", Type: cty.String}},
					ReturnType: cty.String,
				},
				Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
					if args[0].AsString() == "" {
						return cty.NilVal, &sdk.ArgError{Index: 0, Err: errors.New("must not be empty")}
					}
					return cty.StringVal(name + ":" + args[0].AsString()), nil
				},
			},
			id + "_hang": {
				Spec: schema.Function{ReturnType: cty.String},
				Impl: func(context.Context, []cty.Value) (cty.Value, error) {
					time.Sleep(time.Hour)
					return cty.StringVal("late"), nil
				},
			},
		},
	}
}

type source struct{ mode string }

func (s source) Schema() *schema.Block {
	return &schema.Block{Attributes: []*schema.Attribute{
		{Name: "path", Type: cty.String},
		{Name: "size", Type: cty.Number},
	}}
}

func (s source) Validate(_ context.Context, cfg cty.Value) schema.Diagnostics {
	if p := cfg.GetAttr("path"); !p.IsNull() && !filepath.IsAbs(p.AsString()) {
		return schema.Diagnostics{schema.Errorf([]string{"path"}, "path must be absolute")}
	}
	return nil
}

func (s source) PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	switch s.mode {
	case "hang":
		time.Sleep(time.Hour) // ignores ctx on purpose: the host must cut it
	case "log":
		sdk.Logger().Info("hello from plugin", "answer", 42, "address", inst.Address)
		// A JSON line go-plugin's own parser would panic on (non-string
		// @message and @level), straight to file descriptor 2.
		_, _ = os.NewFile(2, "stderr").Write([]byte(`{"@message": 5, "@level": 7, "@timestamp": []}` + "\n"))
	}
	return &sdk.CapturePlan{Notes: []string{"mode " + s.mode}}, nil
}

func (s source) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	if s.mode == "hang" {
		time.Sleep(time.Hour)
	}
	path := "/"
	if p := inst.Config.GetAttr("path"); !p.IsNull() {
		path = p.AsString()
	}
	if err := w.Tree(sdk.Item{Name: "files", Tree: &sdk.TreeSpec{Root: path}}); err != nil {
		return err
	}
	sw, err := w.Stream(sdk.Item{Name: "dump"})
	if err != nil {
		return err
	}
	size := int64(1 << 20)
	if v := inst.Config.GetAttr("size"); !v.IsNull() {
		size, _ = v.AsBigFloat().Int64()
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for written := int64(0); written < size; {
		n := min(int64(len(buf)), size-written)
		if _, err := sw.Write(buf[:n]); err != nil {
			return err
		}
		written += n
		if written >= size/2 {
			switch s.mode {
			case "exit":
				os.Exit(3)
			case "panic":
				go func() { panic("boom in a goroutine") }()
				<-ctx.Done()
				return ctx.Err()
			}
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	return w.Done(sdk.CaptureResult{Meta: map[string]string{"plugin": inst.TypeName}})
}
