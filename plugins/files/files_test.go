package files

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

// writeTree creates files (path -> content) under root; a content of
// "->target" makes a symlink.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func strs(ss ...string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

func instance(t *testing.T, attrs map[string]cty.Value) sdk.Instance {
	t.Helper()
	v, err := config.Build((&Files{}).Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Instance{TypeName: TypeName, Address: "source.files.test", Config: v}
}

const validTag = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n"

// sampleTree is a tree with something for every rule.
func sampleTree(t *testing.T) (root, excludeFile string) {
	dir := t.TempDir()
	root = filepath.Join(dir, "data")
	writeTree(t, root, map[string]string{
		"a.txt":                  "0123456789",   // kept: 10 bytes
		"b.log":                  "excluded....", // *.log
		"keep.log":               "kept!",        // re-included: 5 bytes
		"sub/c.txt":              strings.Repeat("c", 30),
		"sub/deep/d.tmp":         "excluded",               // *.tmp
		"cache/CACHEDIR.TAG":     validTag,                 // whole directory skipped
		"cache/big":              strings.Repeat("x", 100), //
		"fakecache/CACHEDIR.TAG": "not a tag",              // kept: 9 bytes
		"fakecache/x":            "1",                      // kept: 1 byte
		"node_modules/m.js":      "excluded by the file",
		"app/node_modules/n.js":  "excluded by the file",
		"link":                   "->a.txt", // kept, 0 bytes counted
	})
	excludeFile = filepath.Join(dir, "excludes")
	if err := os.WriteFile(excludeFile, []byte("# dependencies\n\nnode_modules/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, excludeFile
}

func TestSchemaIsWellFormed(t *testing.T) {
	if err := (&Files{}).Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	if p := Plugin(); p.Name != "files" || p.Sources[TypeName] == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
}

func TestPlanCaptureCountsWhatIsNotExcluded(t *testing.T) {
	root, excludeFile := sampleTree(t)
	inst := instance(t, map[string]cty.Value{
		"paths":          strs(root),
		"exclude":        strs("*.log", "!keep.log", "*.tmp"),
		"exclude_file":   cty.StringVal(excludeFile),
		"exclude_caches": cty.True,
	})
	plan, err := (&Files{}).PlanCapture(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 1 {
		t.Fatalf("items = %+v", plan.Items)
	}
	it := plan.Items[0]
	// a.txt, keep.log, sub/c.txt, fakecache/CACHEDIR.TAG, fakecache/x, link
	if it.Name != root || it.Kind != sdk.ItemTree || it.Files != 6 || it.Bytes != 10+5+30+9+1 {
		t.Fatalf("estimate = %+v", it)
	}
	for _, want := range []string{"6 files", "1 cache directory skipped", "excluded"} {
		if !strings.Contains(it.Detail, want) {
			t.Errorf("detail %q lacks %q", it.Detail, want)
		}
	}
	if len(plan.Notes) != 0 {
		t.Errorf("notes = %q", plan.Notes)
	}
}

type captured struct {
	items []sdk.Item
	done  []sdk.CaptureResult
}

func (c *captured) Tree(it sdk.Item) error { c.items = append(c.items, it); return nil }
func (c *captured) Stream(sdk.Item) (sdk.StreamWriter, error) {
	return nil, errors.New("the files source must not stream")
}
func (c *captured) Done(r sdk.CaptureResult) error { c.done = append(c.done, r); return nil }

func TestCaptureNamesOneTreePerPath(t *testing.T) {
	root, excludeFile := sampleTree(t)
	other := t.TempDir()
	inst := instance(t, map[string]cty.Value{
		"paths":           strs(root, other+"/"),
		"exclude":         strs("*.log", "!keep.log", "*.tmp"),
		"exclude_file":    cty.StringVal(excludeFile),
		"exclude_caches":  cty.True,
		"one_file_system": cty.True,
	})
	var w captured
	if err := (&Files{}).Capture(context.Background(), inst, &w); err != nil {
		t.Fatal(err)
	}
	if len(w.items) != 2 || len(w.done) != 1 {
		t.Fatalf("items %+v, done %+v", w.items, w.done)
	}
	it := w.items[0]
	if it.Name != root || it.Kind != sdk.ItemTree || it.Tree == nil || it.Tree.Root != root || !it.Tree.OneFileSystem {
		t.Fatalf("item = %+v (tree %+v)", it, it.Tree)
	}
	wantEx := []string{"*.log", "!keep.log", "*.tmp", "node_modules/", "/cache/"}
	if !slices.Equal(it.Tree.Excludes, wantEx) {
		t.Fatalf("excludes = %q, want %q", it.Tree.Excludes, wantEx)
	}
	if w.items[1].Name != other || w.items[1].Tree.Root != other {
		t.Fatalf("second item %+v: the path is not cleaned", w.items[1])
	}
	var paths []string
	if err := json.Unmarshal([]byte(w.done[0].Meta["paths"]), &paths); err != nil || !slices.Equal(paths, []string{root, other}) {
		t.Fatalf("meta paths = %q (%v)", w.done[0].Meta["paths"], err)
	}

	// The host, walking the tree with only the item's patterns, must see
	// exactly what the plan counted.
	m, err := pathmatch.New(it.Tree.Excludes)
	if err != nil {
		t.Fatal(err)
	}
	st, err := walk(context.Background(), root, m, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.files != 6 {
		t.Fatalf("walking with the item's excludes finds %d files, want 6", st.files)
	}
}

func TestCaptureFailsForAMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	inst := instance(t, map[string]cty.Value{"paths": strs(missing)})
	err := (&Files{}).Capture(context.Background(), inst, &captured{})
	if err == nil || !strings.Contains(err.Error(), `source files "test": `+missing+" does not exist") {
		t.Fatalf("err = %v", err)
	}
	plan, err := (&Files{}).PlanCapture(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "does not exist") {
		t.Fatalf("notes = %q", plan.Notes)
	}
}

func TestBadExcludeFileIsReportedWithItsLine(t *testing.T) {
	root := t.TempDir()
	ex := filepath.Join(t.TempDir(), "ex")
	if err := os.WriteFile(ex, []byte("ok\n[broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inst := instance(t, map[string]cty.Value{"paths": strs(root), "exclude_file": cty.StringVal(ex)})
	_, err := (&Files{}).PlanCapture(context.Background(), inst)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), ex) {
		t.Fatalf("err = %v", err)
	}
	inst = instance(t, map[string]cty.Value{"paths": strs(root), "exclude_file": cty.StringVal(ex + ".missing")})
	if _, err := (&Files{}).PlanCapture(context.Background(), inst); err == nil || !strings.Contains(err.Error(), "exclude_file") {
		t.Fatalf("missing exclude file: err = %v", err)
	}
}

func TestSingleFileAndSymlinkPaths(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "12345", "l": "->f"})
	inst := instance(t, map[string]cty.Value{"paths": strs(filepath.Join(dir, "f"), filepath.Join(dir, "l"))})
	plan, err := (&Files{}).PlanCapture(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Items[0].Files != 1 || plan.Items[0].Bytes != 5 {
		t.Fatalf("single file estimate %+v", plan.Items[0])
	}
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "symbolic link") {
		t.Fatalf("notes = %q", plan.Notes)
	}
}

// TestOneFileSystemStopsAtMountPoints mounts a tmpfs inside the tree; it
// needs the privilege to mount and is skipped without it.
func TestOneFileSystemStopsAtMountPoints(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"top": "abc"})
	mnt := filepath.Join(root, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	writeTree(t, mnt, map[string]string{"inner": "0123456789"})

	for _, tc := range []struct {
		oneFS     bool
		wantFiles int64
	}{{true, 1}, {false, 2}} {
		inst := instance(t, map[string]cty.Value{"paths": strs(root), "one_file_system": cty.BoolVal(tc.oneFS)})
		plan, err := (&Files{}).PlanCapture(context.Background(), inst)
		if err != nil {
			t.Fatal(err)
		}
		if got := plan.Items[0].Files; got != tc.wantFiles {
			t.Errorf("one_file_system=%v: %d files, want %d (%s)", tc.oneFS, got, tc.wantFiles, plan.Items[0].Detail)
		}
		if tc.oneFS && !strings.Contains(plan.Items[0].Detail, "1 other file system not crossed") {
			t.Errorf("detail %q does not mention the mount point", plan.Items[0].Detail)
		}
	}
}

// TestPlanReportsUnreadableEntries needs a user that permissions apply to.
// Run as root, it runs itself again as nobody through setpriv.
func TestPlanReportsUnreadableEntries(t *testing.T) {
	if os.Geteuid() == 0 {
		rerunAsNobody(t, "TestPlanReportsUnreadableEntries")
		return
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"ok": "x", "secret": "s", "closed/inner": "i"})
	if err := os.Chmod(filepath.Join(root, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "closed"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "closed"), 0o755) })
	inst := instance(t, map[string]cty.Value{"paths": strs(root)})
	plan, err := (&Files{}).PlanCapture(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "2 entries unreadable") || !strings.Contains(plan.Notes[0], "permission denied") {
		t.Fatalf("notes = %q", plan.Notes)
	}
}

func rerunAsNobody(t *testing.T, test string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("running as root without setpriv: permissions cannot be tested")
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	// The test binary usually sits in a directory only root can enter, so
	// copy it where nobody can run it and give nobody a TMPDIR.
	dir, err := os.MkdirTemp("", "files-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, tmp} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "files.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "GOCOVERDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
	if !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("as nobody, the test did not pass:\n%s", out)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func TestPlanStopsWhenTheContextIsDone(t *testing.T) {
	root, _ := sampleTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Files{}).PlanCapture(ctx, instance(t, map[string]cty.Value{"paths": strs(root)}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		attrs    map[string]cty.Value
		wantPath string // error expected at this attribute; "" none
		wantText string
	}{
		{"valid", map[string]cty.Value{"paths": strs("/etc", "/srv/www"), "exclude": strs("*.tmp"), "exclude_file": cty.StringVal("/etc/runner/ex")}, "", ""},
		{"no paths", map[string]cty.Value{"paths": strs()}, "paths", "at least one"},
		{"null paths", map[string]cty.Value{}, "paths", "at least one"},
		{"relative path", map[string]cty.Value{"paths": strs("etc")}, "paths", `"etc" is not an absolute path`},
		{"duplicate path", map[string]cty.Value{"paths": strs("/etc", "/etc/")}, "paths", "listed twice"},
		{"bad pattern", map[string]cty.Value{"paths": strs("/etc"), "exclude": strs("[x")}, "exclude", "unterminated"},
		{"relative exclude_file", map[string]cty.Value{"paths": strs("/etc"), "exclude_file": cty.StringVal("ex.txt")}, "exclude_file", "absolute"},
		{"unknown paths are not judged yet", map[string]cty.Value{"paths": cty.UnknownVal(cty.List(cty.String))}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := (&Files{}).Validate(context.Background(), config.MustBuild((&Files{}).Schema(), tt.attrs))
			if tt.wantPath == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected diagnostics %+v", diags)
				}
				return
			}
			if !diags.HasErrors() || len(diags[0].Path) == 0 || diags[0].Path[0] != tt.wantPath || !strings.Contains(diags[0].Summary, tt.wantText) {
				t.Fatalf("diagnostics %+v, want an error at %s containing %q", diags, tt.wantPath, tt.wantText)
			}
		})
	}
}

func TestValidateWarnsAboutLikelySlips(t *testing.T) {
	diags := (&Files{}).Validate(context.Background(), config.MustBuild((&Files{}).Schema(), map[string]cty.Value{
		"paths":   strs("/home", "/home/alice"),
		"exclude": strs("/home/alice/.cache/"),
	}))
	if diags.HasErrors() || len(diags) != 3 {
		t.Fatalf("diags = %+v", diags)
	}
	var all []string
	for _, d := range diags {
		all = append(all, d.Summary)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"/home/alice is inside /home", `for /home write "/alice/.cache/"`, `for /home/alice write "/.cache/"`} {
		if !strings.Contains(text, want) {
			t.Errorf("warnings %q lack %q", text, want)
		}
	}
}
