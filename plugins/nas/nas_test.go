package nas

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

func instance(t *testing.T, attrs map[string]cty.Value) sdk.Instance {
	t.Helper()
	v, err := config.Build((&NAS{}).Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Instance{TypeName: TypeName, Address: "target.nas.home", Config: v}
}

func prepare(t *testing.T, root string, readOnly bool) sdk.Session {
	t.Helper()
	s, err := (&NAS{}).Prepare(context.Background(), instance(t, map[string]cty.Value{"path": cty.StringVal(root)}), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s sdk.Session, name, content string) {
	t.Helper()
	if err := s.Put(context.Background(), name, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s sdk.Session, name string, off, n int64) string {
	t.Helper()
	rc, err := s.Get(context.Background(), name, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tree lists every file under root, temporary ones included.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaIsWellFormed(t *testing.T) {
	if err := (&NAS{}).Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	if p := Plugin(); p.Name != "nas" || p.Targets[TypeName] == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
}

func TestPrepareChecksThePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		attrs map[string]cty.Value
		want  string // "" means success
	}{
		{"existing directory", map[string]cty.Value{"path": cty.StringVal(dir)}, ""},
		{"missing path", map[string]cty.Value{"path": cty.StringVal("/x/missing")}, `target nas "home": path /x/missing does not exist (set create_path = true to have it created)`},
		{"path is a file", map[string]cty.Value{"path": cty.StringVal(file)}, "is not a directory"},
		{"relative path", map[string]cty.Value{"path": cty.StringVal("repo")}, "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := (&NAS{}).Prepare(context.Background(), instance(t, tt.attrs), false)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCreatePathWithoutMount(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "a", "repo")
	attrs := map[string]cty.Value{"path": cty.StringVal(repo), "create_path": cty.True}
	if _, err := (&NAS{}).Prepare(context.Background(), instance(t, attrs), true); err == nil || !strings.Contains(err.Error(), "a read-only run does not create it") {
		t.Fatalf("read-only Prepare with create_path: %v", err)
	}
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Fatalf("a read-only Prepare created path: %v", err)
	}
	s, err := (&NAS{}).Prepare(context.Background(), instance(t, attrs), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	if fi, err := os.Stat(repo); err != nil || fi.Mode().Perm() != dirPerm {
		t.Fatalf("created path: %v, %v", fi, err)
	}
}

// TestWriteTestLeavesNothing: a writable Prepare writes and removes its
// test file; the repository directory is as it was.
func TestWriteTestLeavesNothing(t *testing.T) {
	root := t.TempDir()
	s := prepare(t, root, false)
	defer s.Release(context.Background())
	if got := tree(t, root); !slices.Equal(got, []string{"./"}) {
		t.Fatalf("after Prepare: %q", got)
	}
}

func TestObjectVerbs(t *testing.T) {
	root := t.TempDir()
	s := prepare(t, root, false)
	defer s.Release(context.Background())
	if s.LocalRoot() != root {
		t.Fatalf("LocalRoot = %q", s.LocalRoot())
	}
	ctx := context.Background()

	put(t, s, "config", "repo config")
	put(t, s, "data/ab/abcdef", "0123456789")
	put(t, s, "data/cd/cdef01", "x")
	put(t, s, "snapshots/a1", "s1")
	put(t, s, "snapshots/b2", "s2")

	if got := get(t, s, "data/ab/abcdef", 0, 0); got != "0123456789" {
		t.Errorf("whole get = %q", got)
	}
	if got := get(t, s, "data/ab/abcdef", 3, 4); got != "3456" {
		t.Errorf("ranged get = %q", got)
	}
	if got := get(t, s, "data/ab/abcdef", 7, 0); got != "789" {
		t.Errorf("get to the end = %q", got)
	}
	if got := get(t, s, "data/ab/abcdef", 10, 0); got != "" {
		t.Errorf("get at the end = %q", got)
	}
	if _, err := s.Get(ctx, "data/ab/abcdef", 8, 5); err == nil || !strings.Contains(err.Error(), "beyond the end") {
		t.Errorf("get past the end: %v", err)
	}

	put(t, s, "config", "replaced")
	if got := get(t, s, "config", 0, 0); got != "replaced" {
		t.Errorf("overwritten object = %q", got)
	}

	info, err := s.Stat(ctx, "data/ab/abcdef")
	if err != nil || info.Size != 10 || info.Name != "data/ab/abcdef" || time.Since(info.ModTime) > time.Hour {
		t.Errorf("stat = %+v, %v", info, err)
	}

	list := func(prefix string) []string {
		var names []string
		if err := s.List(ctx, prefix, func(oi sdk.ObjectInfo) error {
			names = append(names, oi.Name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return names
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"config", "data/ab/abcdef", "data/cd/cdef01", "snapshots/a1", "snapshots/b2"}},
		{"data/", []string{"data/ab/abcdef", "data/cd/cdef01"}},
		{"data/c", []string{"data/cd/cdef01"}},
		{"snapshots/b", []string{"snapshots/b2"}},
		{"snap", []string{"snapshots/a1", "snapshots/b2"}},
		{"index/", nil},
		{"nothing/here/", nil},
	} {
		if got := list(tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.List(ctx, "", func(sdk.ObjectInfo) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List does not stop on fn's error: %v after %d calls", err, calls)
	}

	if err := s.Delete(ctx, "snapshots/a1"); err != nil {
		t.Fatal(err)
	}
	if got := list("snapshots/"); !slices.Equal(got, []string{"snapshots/b2"}) {
		t.Errorf("after delete: %q", got)
	}

	for _, p := range tree(t, root) {
		if strings.Contains(p, tmpPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "data", "ab", "abcdef"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("object mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestMissingObjectsAreErrNotFound(t *testing.T) {
	root := t.TempDir()
	s := prepare(t, root, false)
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(root, "data", "ab"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nope", "data/ab"} { // a directory is not an object
		if _, err := s.Get(ctx, name, 0, 0); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Get(%q): %v", name, err)
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat(%q): %v", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Delete(%q): %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "data", "ab")); err != nil {
		t.Errorf("Delete removed a directory: %v", err)
	}
}

func TestObjectNamesCannotLeaveTheRepository(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	s := prepare(t, root, false)
	ctx := context.Background()
	for _, name := range []string{"", "../evil", "a/../../evil", "/etc/passwd", "a//b", "a/./b", "a/", ".runner-tmp-x", "a\x00b"} {
		if err := s.Put(ctx, name, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) succeeded", name)
		}
		if _, err := s.Get(ctx, name, 0, 0); err == nil || errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Get(%q): %v, want a name error", name, err)
		}
		if _, err := s.Stat(ctx, name); err == nil || errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat(%q): %v, want a name error", name, err)
		}
		if err := s.Delete(ctx, name); err == nil || errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Delete(%q): %v, want a name error", name, err)
		}
	}
	if err := s.List(ctx, "../", func(sdk.ObjectInfo) error { return nil }); err == nil {
		t.Error("List(../) succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
		t.Errorf("something was written beside the repository: %v", entries)
	}
}

func TestFailedPutLeavesNoObject(t *testing.T) {
	root := t.TempDir()
	s := prepare(t, root, false)
	put(t, s, "keep", "old")

	// Fewer bytes than announced: the old object stays.
	if err := s.Put(context.Background(), "keep", strings.NewReader("ne"), 3); err == nil || !strings.Contains(err.Error(), "got 2 bytes, expected 3") {
		t.Fatalf("short put: %v", err)
	}
	// A cancelled context stops the copy.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "new", bytes.NewReader(make([]byte, 1<<20)), 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: %v", err)
	}
	if got := get(t, s, "keep", 0, 0); got != "old" {
		t.Errorf("object after failed put = %q", got)
	}
	if got := tree(t, root); !slices.Equal(got, []string{"./", "keep"}) {
		t.Errorf("files after failed puts: %q", got)
	}
	// Unknown size (-1) is accepted.
	if err := s.Put(context.Background(), "unsized", strings.NewReader("abc"), -1); err != nil {
		t.Fatal(err)
	}
}

func TestReadOnlySessionNeverWrites(t *testing.T) {
	root := t.TempDir()
	rw := prepare(t, root, false)
	put(t, rw, "data/x", "1")
	before := tree(t, root)

	ro := prepare(t, root, true)
	ctx := context.Background()
	if err := ro.Put(ctx, "data/y", strings.NewReader("2"), 1); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("read-only Put: %v", err)
	}
	if err := ro.Delete(ctx, "data/x"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("read-only Delete: %v", err)
	}
	if got := get(t, ro, "data/x", 0, 0); got != "1" {
		t.Errorf("read-only Get = %q", got)
	}
	if err := ro.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, root); !slices.Equal(before, after) {
		t.Errorf("read-only session changed the repository: %q -> %q", before, after)
	}
}

func TestUsageAndRelease(t *testing.T) {
	s := prepare(t, t.TempDir(), false)
	ctx := context.Background()
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.TotalBytes <= 0 || u.FreeBytes < 0 || u.FreeBytes > u.TotalBytes || u.UsedBytes != -1 {
		t.Errorf("usage = %+v", u)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx); err == nil {
		t.Error("second Release succeeded")
	}
	if _, err := s.Stat(ctx, "x"); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("Stat after Release: %v", err)
	}
}

func TestValidate(t *testing.T) {
	argv := func(args ...string) cty.Value {
		vals := make([]cty.Value, len(args))
		for i, a := range args {
			vals[i] = cty.StringVal(a)
		}
		return cty.ListVal(vals)
	}
	expect := func(attrs map[string]cty.Value) cty.Value { return cty.ObjectVal(attrs) }
	tests := []struct {
		name      string
		attrs     map[string]cty.Value
		wantPath  []string // nil: no error
		wantText  string
		wantWarns int
	}{
		{"valid", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/runner"), "mount": cty.StringVal("/mnt/nas")}, nil, "", 0},
		{"path equal to mount", map[string]cty.Value{"path": cty.StringVal("/mnt/nas"), "mount": cty.StringVal("/mnt/nas/")}, nil, "", 0},
		{"expect is verified, so no warning", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"),
			"expect": expect(map[string]cty.Value{"uid": cty.NumberIntVal(98), "gid": cty.NumberIntVal(401), "fstype": cty.StringVal("cifs"), "marker": cty.StringVal(".nas")})}, nil, "", 0},
		{"all mount settings", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_with": cty.StringVal("systemd"),
			"mount_unit": cty.StringVal("mnt-nas.mount"), "mount_command": argv("/bin/true"), "umount_command": argv("/bin/true"), "mount_timeout": cty.StringVal("30s"), "create_path": cty.True}, nil, "", 0},
		{"mount_with none", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_with": cty.StringVal("none")}, nil, "", 0},
		{"unknown mount_with", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_with": cty.StringVal("automount")}, []string{"mount_with"}, `must be "mount", "systemd" or "none"`, 0},
		{"mount_with without mount", map[string]cty.Value{"path": cty.StringVal("/r"), "mount_with": cty.StringVal("mount")}, []string{"mount_with"}, "needs mount", 0},
		{"mount_unit without systemd", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_unit": cty.StringVal("x.mount")}, []string{"mount_unit"}, `only used with mount_with = "systemd"`, 0},
		{"mount_unit with a slash", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_with": cty.StringVal("systemd"), "mount_unit": cty.StringVal("/mnt/nas")}, []string{"mount_unit"}, "systemd unit name", 0},
		{"mount_command with none", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_with": cty.StringVal("none"), "mount_command": argv("/bin/true")}, []string{"mount_command"}, `not used with mount_with = "none"`, 0},
		{"empty umount_command", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "umount_command": cty.ListValEmpty(cty.String)}, []string{"umount_command"}, "must name a program", 0},
		{"mount_command without mount", map[string]cty.Value{"path": cty.StringVal("/r"), "mount_command": argv("/bin/true")}, []string{"mount_command"}, "needs mount", 0},
		{"bad mount_timeout", map[string]cty.Value{"path": cty.StringVal("/mnt/nas/r"), "mount": cty.StringVal("/mnt/nas"), "mount_timeout": cty.StringVal("soon")}, []string{"mount_timeout"}, "mount_timeout", 0},
		{"mount is /", map[string]cty.Value{"path": cty.StringVal("/r"), "mount": cty.StringVal("/")}, []string{"mount"}, "must not be /", 0},
		{"expect without mount", map[string]cty.Value{"path": cty.StringVal("/r"), "expect": expect(map[string]cty.Value{"uid": cty.NumberIntVal(98)})}, []string{"expect"}, "expect needs mount", 0},
		{"missing path", map[string]cty.Value{}, []string{"path"}, "required", 0},
		{"relative path", map[string]cty.Value{"path": cty.StringVal("runner")}, []string{"path"}, "absolute", 0},
		{"relative mount", map[string]cty.Value{"path": cty.StringVal("/mnt/x"), "mount": cty.StringVal("mnt")}, []string{"mount"}, "absolute", 0},
		{"path outside mount", map[string]cty.Value{"path": cty.StringVal("/mnt/nasty/r"), "mount": cty.StringVal("/mnt/nas")}, []string{"path"}, "not inside mount", 0},
		{"negative uid", map[string]cty.Value{"path": cty.StringVal("/m/r"), "mount": cty.StringVal("/m"), "expect": expect(map[string]cty.Value{"uid": cty.NumberIntVal(-1)})}, []string{"expect", "uid"}, "from 0", 0},
		{"fractional gid", map[string]cty.Value{"path": cty.StringVal("/m/r"), "mount": cty.StringVal("/m"), "expect": expect(map[string]cty.Value{"gid": cty.NumberFloatVal(4.5)})}, []string{"expect", "gid"}, "whole number", 0},
		{"marker escaping the mount", map[string]cty.Value{"path": cty.StringVal("/m/r"), "mount": cty.StringVal("/m"), "expect": expect(map[string]cty.Value{"marker": cty.StringVal("../x")})}, []string{"expect", "marker"}, "relative to the mount point", 0},
		{"absolute marker", map[string]cty.Value{"path": cty.StringVal("/m/r"), "mount": cty.StringVal("/m"), "expect": expect(map[string]cty.Value{"marker": cty.StringVal("/x")})}, []string{"expect", "marker"}, "relative", 0},
		{"unknown path is not judged yet", map[string]cty.Value{"path": cty.UnknownVal(cty.String)}, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := (&NAS{}).Validate(context.Background(), config.MustBuild((&NAS{}).Schema(), tt.attrs))
			if tt.wantPath == nil {
				if diags.HasErrors() || len(diags) != tt.wantWarns {
					t.Fatalf("diagnostics %+v, want %d warnings", diags, tt.wantWarns)
				}
				return
			}
			if !diags.HasErrors() || !slices.Equal(diags[0].Path, tt.wantPath) || !strings.Contains(diags[0].Summary, tt.wantText) {
				t.Fatalf("diagnostics %+v, want an error at %v containing %q", diags, tt.wantPath, tt.wantText)
			}
		})
	}
}
