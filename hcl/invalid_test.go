package hcl_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	config "github.com/backup-runner/runner/hcl"
)

var update = flag.Bool("update", false, "rewrite the expected diagnostics of testdata/invalid")

// TestInvalidConfigs loads every broken configuration under
// testdata/invalid and checks that it yields exactly one error: the one in
// its "expected" file, as file:line: summary: detail. An optional "vars"
// file holds -var NAME=VALUE options, one a line.
func TestInvalidConfigs(t *testing.T) {
	dirs, err := filepath.Glob("testdata/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("want at least 30 broken configs, found %d", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var vars []string
			if b, err := os.ReadFile(filepath.Join(dir, "vars")); err == nil {
				vars = strings.Split(strings.TrimSpace(string(b)), "\n")
			}
			env := map[string]string{"RUNNER_HOSTNAME": "web1"}
			_, _, diags := config.Load(context.Background(), dir, config.Options{
				Vars:     vars,
				Resolver: testResolver(),
				Getenv:   func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			})
			var got []string
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					got = append(got, strings.ReplaceAll(config.Short(d), dir+"/", ""))
				}
			}
			expFile := filepath.Join(dir, "expected")
			if *update {
				if err := os.WriteFile(expFile, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(expFile)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%s", len(got), strings.Join(got, "\n"))
			}
			if strings.TrimSpace(string(want)) != got[0] {
				t.Errorf("diagnostic mismatch\nwant: %s\ngot:  %s", strings.TrimSpace(string(want)), got[0])
			}
		})
	}
}
