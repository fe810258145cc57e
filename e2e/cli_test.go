package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	r := runner(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "runner ") {
		t.Fatalf("version: %s", r)
	}
}

func TestValidateBundledExample(t *testing.T) {
	r := runner(t, nil, "-C", filepath.Join(repoRoot, "examples", "demo"), "validate")
	if r.code != 0 {
		t.Fatalf("validate of the bundled example failed: %s", r)
	}
	mustContain(t, r, "is valid", "3 jobs")
}

// Every broken config of the language tests also fails through the CLI,
// with exit code 1 and its diagnostic (file and line) on stderr.
func TestValidateBrokenConfigs(t *testing.T) {
	cases := map[string]string{
		"07-unknown-plugin-attribute":  `An argument named "exlcude" is not expected here. Did you mean "exclude"?`,
		"12-dangling-target-reference": `No target "nas" "hmoe" is declared. Did you mean "home"?`,
		"16-cycle-in-locals":           "local.a -> local.b -> local.a",
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(repoRoot, "hcl", "testdata", "invalid", name)
			r := runner(t, nil, "-C", dir, "validate")
			if r.code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
			mustContain(t, r, want, "main.hcl line ")
		})
	}
}

func TestValidateJSONDiagnostics(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": "target \"nas\" \"x\" {\n  path = \"relative\"\n}\n"})
	r := runner(t, nil, "-C", dir, "-json", "validate")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	var out struct {
		Diagnostics []struct {
			Summary string
			Range   struct {
				Filename string
				Line     int
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stderr), &out); err != nil {
		t.Fatalf("stderr is not JSON: %v\n%s", err, r)
	}
	if len(out.Diagnostics) != 1 || out.Diagnostics[0].Range.Line != 2 || !strings.Contains(out.Diagnostics[0].Summary, "absolute") {
		t.Fatalf("diagnostics = %+v", out.Diagnostics)
	}
}

func TestFmtCheckAndRewrite(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": "target \"nas\" \"x\" {\npath=\"/nas\"\n}\n"})
	r := runner(t, nil, "-C", dir, "fmt", "-check")
	if r.code != 2 || !strings.Contains(r.stdout, "main.hcl") {
		t.Fatalf("fmt -check on an unformatted file: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "fmt"); r.code != 0 {
		t.Fatalf("fmt: %s", r)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "main.hcl"))
	if string(b) != "target \"nas\" \"x\" {\n  path = \"/nas\"\n}\n" {
		t.Fatalf("formatted file:\n%s", b)
	}
	if r := runner(t, nil, "-C", dir, "fmt", "-check"); r.code != 0 {
		t.Fatalf("fmt -check after fmt: %s", r)
	}
}

func TestUnknownCommand(t *testing.T) {
	r := runner(t, nil, "frobnicate")
	if r.code != 1 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("%s", r)
	}
}
