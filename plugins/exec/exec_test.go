package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

func argv(args ...string) cty.Value {
	vals := make([]cty.Value, len(args))
	for i, a := range args {
		vals[i] = cty.StringVal(a)
	}
	return cty.ListVal(vals)
}

// record returns an argv that appends a line to the file named by $LOG.
func record(line string) cty.Value {
	return argv("/bin/sh", "-c", `echo "`+line+`" >> "$LOG"`)
}

func request(t *testing.T, attrs map[string]cty.Value, env map[string]string) sdk.HookRequest {
	t.Helper()
	v, err := config.Build((&Exec{}).Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.HookRequest{
		Instance: sdk.Instance{TypeName: TypeName, Address: "hook.exec.test", Config: v},
		Env:      env,
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSchemaIsWellFormed(t *testing.T) {
	if err := (&Exec{}).Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	p := Plugin()
	if p.Name != "exec" || p.Version == "" || p.Hooks[TypeName] == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
}

func TestUpRunsBeforeWithEnvironmentAndDir(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	req := request(t, map[string]cty.Value{
		"before":      argv("/bin/sh", "-c", `echo "$RUNNER_JOB $RUNNER_HOOK_PHASE $GREETING $(pwd)" >> "$LOG"`),
		"after":       record("after"),
		"environment": cty.MapVal(map[string]cty.Value{"GREETING": cty.StringVal("hi"), "LOG": cty.StringVal(log)}),
		"dir":         cty.StringVal(dir),
	}, map[string]string{"RUNNER_JOB": "site"})
	notes, err := (&Exec{}).Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readLog(t, log), "site before hi "+dir; got != want {
		t.Fatalf("log = %q, want %q", got, want)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "ran before: /bin/sh -c") {
		t.Fatalf("notes = %q", notes)
	}
}

func TestDownRunsByStatus(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   string
	}{
		{"success runs after then always", "success", "after\nalways"},
		{"failure runs on_failure then always", "failure", "on_failure\nalways"},
		{"another status runs only always", "", "always"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			req := request(t, map[string]cty.Value{
				"before":      record("before"),
				"after":       record("after"),
				"on_failure":  record("on_failure"),
				"always":      record("always"),
				"environment": cty.MapVal(map[string]cty.Value{"LOG": cty.StringVal(log)}),
			}, map[string]string{"RUNNER_STATUS": tt.status})
			if _, err := (&Exec{}).Down(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if got := readLog(t, log); got != tt.want {
				t.Fatalf("ran %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDownRunsAlwaysEvenWhenAfterFails(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"after":       argv("/bin/sh", "-c", "echo disk full >&2; exit 4"),
		"always":      record("always"),
		"environment": cty.MapVal(map[string]cty.Value{"LOG": cty.StringVal(log)}),
	}, map[string]string{"RUNNER_STATUS": "success"})
	_, err := (&Exec{}).Down(context.Background(), req)
	if err == nil {
		t.Fatal("a failing after did not fail Down")
	}
	for _, want := range []string{`hook exec "test": after:`, "exited with status 4", "disk full", "/bin/sh -c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := readLog(t, log); got != "always" {
		t.Fatalf("always did not run: log %q", got)
	}
}

func TestRequestEnvOverridesConfiguredEnvironment(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"before":      argv("/bin/sh", "-c", `echo "$RUNNER_JOB" >> "$LOG"`),
		"environment": cty.MapVal(map[string]cty.Value{"LOG": cty.StringVal(log), "RUNNER_JOB": cty.StringVal("configured")}),
	}, map[string]string{"RUNNER_JOB": "from-request"})
	if _, err := (&Exec{}).Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "from-request" {
		t.Fatalf("RUNNER_JOB = %q", got)
	}
}

func TestTimeoutKillsTheCommand(t *testing.T) {
	req := request(t, map[string]cty.Value{
		"before":  argv("/bin/sleep", "30"),
		"timeout": cty.StringVal("1s"),
	}, nil)
	start := time.Now()
	_, err := (&Exec{}).Up(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Up took %v", el)
	}
}

func TestDryRunRunsNothing(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"before":      record("before"),
		"after":       record("after"),
		"always":      record("always"),
		"environment": cty.MapVal(map[string]cty.Value{"LOG": cty.StringVal(log)}),
	}, map[string]string{"RUNNER_STATUS": "success"})
	req.DryRun = true
	up, err := (&Exec{}).Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	down, err := (&Exec{}).Down(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "" {
		t.Fatalf("dry run ran commands: %q", got)
	}
	all := strings.Join(append(up, down...), "\n")
	for _, want := range []string{"would run before: /bin/sh -c", "would run after:", "would run always:"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes %q do not contain %q", all, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		attrs    map[string]cty.Value
		wantPath string // "" means no error expected
		wantText string
	}{
		{"valid", map[string]cty.Value{"before": argv("/bin/true"), "timeout": cty.StringVal("30s"), "dir": cty.StringVal("/tmp")}, "", ""},
		{"empty argv", map[string]cty.Value{"before": cty.ListValEmpty(cty.String)}, "before", "must name a program"},
		{"empty program", map[string]cty.Value{"always": argv("", "x")}, "always", "program (first element) is empty"},
		{"bad timeout", map[string]cty.Value{"before": argv("x"), "timeout": cty.StringVal("3x")}, "timeout", `unknown unit "x"`},
		{"calendar timeout", map[string]cty.Value{"before": argv("x"), "timeout": cty.StringVal("1M")}, "timeout", "months or years"},
		{"relative dir", map[string]cty.Value{"before": argv("x"), "dir": cty.StringVal("srv")}, "dir", "absolute"},
		{"bad variable name", map[string]cty.Value{"before": argv("x"), "environment": cty.MapVal(map[string]cty.Value{"A=B": cty.StringVal("1")})}, "environment", "not a valid variable name"},
		{"unknown values are not judged yet", map[string]cty.Value{"before": cty.UnknownVal(cty.List(cty.String)), "timeout": cty.UnknownVal(cty.String), "dir": cty.UnknownVal(cty.String)}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := config.Build((&Exec{}).Schema(), tt.attrs)
			if err != nil {
				t.Fatal(err)
			}
			diags := (&Exec{}).Validate(context.Background(), v)
			if tt.wantPath == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected diagnostics %+v", diags)
				}
				return
			}
			if !diags.HasErrors() {
				t.Fatalf("no error, want one at %s", tt.wantPath)
			}
			d := diags[0]
			if len(d.Path) == 0 || d.Path[0] != tt.wantPath || !strings.Contains(d.Summary, tt.wantText) {
				t.Fatalf("diagnostic %+v, want path %s and %q", d, tt.wantPath, tt.wantText)
			}
		})
	}
}

func TestValidateWarnsAboutAHookThatRunsNothing(t *testing.T) {
	v := config.MustBuild((&Exec{}).Schema(), nil)
	diags := (&Exec{}).Validate(context.Background(), v)
	if len(diags) != 1 || diags.HasErrors() || !strings.Contains(diags[0].Summary, "runs nothing") {
		t.Fatalf("diags = %+v", diags)
	}
}
