package hcl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	config "github.com/backup-runner/runner/hcl"
)

func TestFormatCanonicalAndIdempotent(t *testing.T) {
	src := []byte("job \"a\" {\nsource=source.files.docs\n    target   =  target.nas.home\n}\n")
	want := []byte("job \"a\" {\n  source = source.files.docs\n  target = target.nas.home\n}\n")
	got, diags := config.FormatSource(src, "x.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("formatted:\n%s\nwant:\n%s", got, want)
	}
	again, _ := config.FormatSource(got, "x.hcl")
	if !bytes.Equal(again, got) {
		t.Fatalf("formatting is not idempotent:\n%s", again)
	}
}

func TestFormatRefusesBrokenSyntax(t *testing.T) {
	if _, diags := config.FormatSource([]byte("job \"a\" {\n"), "x.hcl"); !diags.HasErrors() {
		t.Fatal("a file that does not parse must not be formatted")
	}
}

// The example configs shipped with runner are canonical.
func TestExamplesAreFormatted(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.hcl")
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	for _, f := range files {
		r, diags := config.FormatFile(f)
		if diags.HasErrors() {
			t.Errorf("%s: %v", f, diags)
		} else if r.Changed() {
			t.Errorf("%s is not formatted: run runner fmt", f)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the whole loader: whatever the input,
// it must return diagnostics, never panic.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/*.hcl")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`job "x" { for_each = {a = 1} source = each.value target = each.key }`))
	f.Add([]byte(`locals { a = [for x in local.a : x] }`))
	resolver := testResolver()
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "fuzz.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, _ = config.Load(context.Background(), dir, config.Options{
			Resolver: resolver,
			Getenv:   func(string) (string, bool) { return "", false },
		})
	})
}

// FuzzFormat: formatting never panics, and formatting is idempotent.
func FuzzFormat(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/*.hcl")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, diags := config.FormatSource(src, "fuzz.hcl")
		if diags.HasErrors() {
			return
		}
		again, diags := config.FormatSource(out, "fuzz.hcl")
		if diags.HasErrors() {
			t.Fatalf("formatted output does not parse: %v\n%s", diags, out)
		}
		if !bytes.Equal(out, again) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
	})
}
