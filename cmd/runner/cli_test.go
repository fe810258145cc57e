package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestGlobalOptionsBeforeOrAfterTheCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("target \"nas\" \"x\" {\npath=\"/nas\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-C", dir, "fmt", "-check"},
		{"fmt", "-C", dir, "-check"},
		{"fmt", "-check", "-C", dir},
	} {
		code, out, errs := runMain(args...)
		if code != exitChanges || !strings.Contains(out, "main.hcl") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: runner"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"validate", "extra"}, "validate takes no arguments"},
		{[]string{"--log-level", "loud", "version"}, `unknown log level "loud"`},
		{[]string{"version", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-nice", "20", "version"}, "-nice: nice value 20: want 0 (unchanged) to 19"},
		{[]string{"version", "-nice", "-1"}, "-nice: nice value -1"},
	} {
		code, _, errs := runMain(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, exitUsage, tc.want)
		}
	}
}

func TestHelpListsVisibleCommandsOnly(t *testing.T) {
	code, out, _ := runMain("help")
	if code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range []string{"validate", "plan", "apply", "fmt", "plugins", "version"} {
		if !strings.Contains(out, "  "+c+" ") {
			t.Errorf("help lacks %s:\n%s", c, out)
		}
	}
	if strings.Contains(out, "internal-plugin") {
		t.Errorf("help shows the hidden internal-plugin command")
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("f.hcl", "a\nb\nc\n", "a\nB\nc\n")
	want := "--- f.hcl\n+++ f.hcl (formatted)\n-2: b\n+2: B\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	var o restoreOptions
	fs := commandFlagSet(&command{name: "restore", flags: func(fs *flag.FlagSet) {
		fs.StringVar(&o.to, "to", "", "")
		fs.Var(&o.include, "include", "")
	}}, &globals{}, io.Discard)
	pos, err := parseInterspersed(fs, []string{"site", "--to", "/tmp/x", "--include", "a", "extra", "--", "-not-a-flag"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "site extra -not-a-flag" || o.to != "/tmp/x" || len(o.include) != 1 {
		t.Fatalf("positional %q, to %q, include %v", pos, o.to, o.include)
	}
}

func TestCountSaysOneOrMany(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 files"}, {1, "1 file"}, {2, "2 files"}} {
		if got := count(tc.n, "file", "files"); got != tc.want {
			t.Errorf("count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
