package exec_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	execplugin "github.com/backup-runner/runner/plugins/exec"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

// TestThroughTheHarness runs the hook as the runner will: over gRPC.
func TestThroughTheHarness(t *testing.T) {
	c := sdktest.Start(t, execplugin.Plugin())
	ctx := context.Background()
	h, err := c.Hook(ctx, execplugin.TypeName)
	if err != nil {
		t.Fatal(err)
	}

	bad := config.MustBuild(h.Schema(), map[string]cty.Value{
		"before": cty.ListVal([]cty.Value{cty.StringVal("/bin/true")}), "timeout": cty.StringVal("3x"),
	})
	diags, err := c.ValidateConfig(ctx, schema.KindHook, execplugin.TypeName, bad)
	if err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() || !slices.Equal(diags[0].Path, []string{"timeout"}) {
		t.Fatalf("diagnostics over the wire: %+v", diags)
	}

	log := filepath.Join(t.TempDir(), "log")
	sh := func(script string) cty.Value {
		return cty.ListVal([]cty.Value{cty.StringVal("/bin/sh"), cty.StringVal("-c"), cty.StringVal(script)})
	}
	v := config.MustBuild(h.Schema(), map[string]cty.Value{
		"before":     sh(`echo "before $RUNNER_JOB" >> ` + log),
		"on_failure": sh(`echo "on_failure" >> ` + log + `; echo cleanup failed >&2; exit 2`),
		"always":     sh(`echo always >> ` + log),
	})
	req := sdk.HookRequest{
		Instance: sdk.Instance{TypeName: execplugin.TypeName, Address: "hook.exec.wrap", Config: v},
		Env:      map[string]string{"RUNNER_JOB": "site", "RUNNER_STATUS": "failure"},
	}
	notes, err := h.Up(ctx, req)
	if err != nil || len(notes) != 1 {
		t.Fatalf("Up: %q, %v", notes, err)
	}
	_, err = h.Down(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "exited with status 2") || !strings.Contains(err.Error(), "cleanup failed") {
		t.Fatalf("Down error over the wire: %v", err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "before site\non_failure\nalways" {
		t.Fatalf("ran %q", got)
	}
}
