package nas

// Tests with real mounts: tmpfs and bind mounts, which need root (they
// are skipped otherwise). Every mount is made under t.TempDir() and taken
// down by t.Cleanup, registered before the mount is attempted, so even a
// failing test leaves nothing mounted.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
	"github.com/backup-runner/runner/plugins/sdk/targettest"
)

var (
	canMountOnce sync.Once
	canMountErr  error
)

// needMounts skips the test unless this process may mount file systems.
func needMounts(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs and bind mounts")
	}
	canMountOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nas-canmount-")
		if err != nil {
			canMountErr = err
			return
		}
		defer os.Remove(dir)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
			canMountErr = fmt.Errorf("mount tmpfs: %v: %s", err, out)
			return
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
			canMountErr = fmt.Errorf("umount tmpfs: %v: %s", err, out)
		}
	})
	if canMountErr != nil {
		t.Skipf("cannot mount here: %v", canMountErr)
	}
}

// mounted reports whether dir is a mount point now.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	_, ok := mountAt(entries, real)
	return ok
}

// cleanupMounts takes down whatever is mounted at dir when the test ends:
// normally by umount, lazily if something holds it busy. It is registered
// before any mount at dir, so it runs before t.TempDir's removal.
func cleanupMounts(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		for i := 0; i < 8 && mounted(t, dir); i++ {
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Logf("umount %s: %v: %s; unmounting lazily", dir, err, out)
				if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
					t.Errorf("umount -l %s: %v: %s", dir, err, out)
					return
				}
			}
		}
	})
}

// run runs a command the test needs to succeed.
func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// mountPoint makes an empty directory for a mount under a fresh temporary
// directory and arranges for it to be unmounted at the end.
func mountPoint(t *testing.T, name string) (parent, dir string) {
	t.Helper()
	parent = t.TempDir()
	dir = filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cleanupMounts(t, dir)
	return parent, dir
}

// mountTmpfs mounts a tmpfs at dir now (a mount someone else made).
func mountTmpfs(t *testing.T, dir string, opts ...string) {
	t.Helper()
	run(t, "mount", "-t", "tmpfs", "-o", strings.Join(append([]string{"size=16m"}, opts...), ","), "tmpfs", dir)
}

// tmpfsCommand is a mount_command that mounts a tmpfs at dir.
func tmpfsCommand(dir string, opts ...string) cty.Value {
	return strList("mount", "-t", "tmpfs", "-o", strings.Join(append([]string{"size=16m"}, opts...), ","), "tmpfs", dir)
}

// shCommand is a mount_command running a shell script.
func shCommand(script string) cty.Value { return strList("/bin/sh", "-c", script) }

func strList(args ...string) cty.Value {
	vals := make([]cty.Value, len(args))
	for i, a := range args {
		vals[i] = cty.StringVal(a)
	}
	return cty.ListVal(vals)
}

func expectBlock(attrs map[string]cty.Value) cty.Value { return cty.ObjectVal(attrs) }

// prepareErr prepares and expects a failure whose message is exactly want.
func prepareErr(t *testing.T, attrs map[string]cty.Value, readOnly bool, want string) {
	t.Helper()
	s, err := (&NAS{}).Prepare(context.Background(), instance(t, attrs), readOnly)
	if err == nil {
		_ = s.Release(context.Background())
		t.Fatalf("Prepare succeeded; want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("Prepare error\n got: %s\nwant: %s", err, want)
	}
}

func prepareOK(t *testing.T, attrs map[string]cty.Value, readOnly bool) sdk.Session {
	t.Helper()
	s, err := (&NAS{}).Prepare(context.Background(), instance(t, attrs), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMountGoodPath(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	repo := filepath.Join(mnt, "runner")
	attrs := map[string]cty.Value{
		"path": cty.StringVal(repo), "mount": cty.StringVal(mnt), "create_path": cty.True,
		"mount_command": tmpfsCommand(mnt, "uid=98", "gid=401"),
		"expect":        expectBlock(map[string]cty.Value{"fstype": cty.StringVal("tmpfs"), "uid": cty.NumberIntVal(98), "gid": cty.NumberIntVal(401)}),
	}
	s := prepareOK(t, attrs, false)
	if !mounted(t, mnt) {
		t.Fatal("Prepare did not mount")
	}
	if s.LocalRoot() != repo {
		t.Errorf("LocalRoot = %q", s.LocalRoot())
	}
	put(t, s, "config", "on the share")
	if got := tree(t, mnt); !slices.Equal(got, []string{"./", "runner/", "runner/config"}) {
		t.Errorf("the share holds %q", got)
	}
	u, err := s.Usage(context.Background())
	if err != nil || u.TotalBytes != 16<<20 {
		t.Errorf("Usage = %+v, %v; want the tmpfs's 16 MiB", u, err)
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("Release did not unmount what Prepare mounted")
	}
	// Everything went to the tmpfs: the bare mount point is still empty.
	if got := tree(t, mnt); !slices.Equal(got, []string{"./"}) {
		t.Errorf("the bare mount point holds %q", got)
	}
}

// TestMountReadOnlyPrepare: a plan or dry run mounts too when it must,
// skips the write test, and unmounts on Release.
func TestMountReadOnlyPrepare(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	repo := filepath.Join(mnt, "runner")
	attrs := map[string]cty.Value{
		"path": cty.StringVal(repo), "mount": cty.StringVal(mnt),
		"mount_command": shCommand(fmt.Sprintf("mount -t tmpfs -o size=1m tmpfs %q && mkdir %q && echo x > %q/config", mnt, repo, repo)),
	}
	s := prepareOK(t, attrs, true)
	if !mounted(t, mnt) {
		t.Fatal("read-only Prepare did not mount")
	}
	if got := get(t, s, "config", 0, 0); got != "x\n" {
		t.Errorf("config = %q", got)
	}
	if err := s.Put(context.Background(), "x", strings.NewReader("x"), 1); err == nil {
		t.Error("read-only session wrote")
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("Release of a read-only session did not unmount")
	}
}

// TestFailedPrepareUnmounts: when a check after the mount fails, Prepare
// takes down what it mounted before returning the error.
func TestFailedPrepareUnmounts(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	repo := filepath.Join(mnt, "runner")
	attrs := map[string]cty.Value{"path": cty.StringVal(repo), "mount": cty.StringVal(mnt), "mount_command": tmpfsCommand(mnt)}
	// A fresh tmpfs has no repository, and a read-only run does not create it.
	prepareErr(t, attrs, true, fmt.Sprintf(`target nas "home": path %s does not exist (set create_path = true to have it created)`, repo))
	if mounted(t, mnt) {
		t.Fatal("a failed Prepare left its mount")
	}
}

func TestAlreadyMountedIsLeftMounted(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	mountTmpfs(t, mnt)
	if err := os.Mkdir(filepath.Join(mnt, "runner"), 0o700); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]cty.Value{
		"path": cty.StringVal(filepath.Join(mnt, "runner")), "mount": cty.StringVal(mnt),
		// Neither may run: the mount is someone else's.
		"mount_command": strList("/bin/false"), "umount_command": strList("/bin/false"),
	}
	for _, readOnly := range []bool{false, true} {
		s := prepareOK(t, attrs, readOnly)
		if err := s.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !mounted(t, mnt) {
			t.Fatalf("Release (read-only %v) unmounted a mount it did not make", readOnly)
		}
	}
}

func TestRefusesTheBareMountPoint(t *testing.T) {
	needMounts(t)
	parent, mnt := mountPoint(t, "nas")
	repo := filepath.Join(mnt, "runner")
	// The trap: the repository directory exists on the bare mount point,
	// so only the mount checks stand between the backup and the local
	// disk.
	if err := os.Mkdir(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	want := func(verb string) string {
		return fmt.Sprintf(`target nas "home": %s is not a mount point (same device as %s; not in /proc/self/mountinfo): refusing to %s the bare directory`, mnt, parent, verb)
	}
	base := map[string]cty.Value{"path": cty.StringVal(repo), "mount": cty.StringVal(mnt)}
	with := func(extra map[string]cty.Value) map[string]cty.Value {
		m := map[string]cty.Value{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	t.Run("mount_with none", func(t *testing.T) {
		prepareErr(t, with(map[string]cty.Value{"mount_with": cty.StringVal("none")}), false, want("write to"))
		prepareErr(t, with(map[string]cty.Value{"mount_with": cty.StringVal("none")}), true, want("read from"))
	})
	t.Run("mount command that mounts nothing", func(t *testing.T) {
		prepareErr(t, with(map[string]cty.Value{"mount_command": strList("/bin/true")}), false, want("write to"))
	})
	t.Run("create_path does not create on the bare directory", func(t *testing.T) {
		prepareErr(t, map[string]cty.Value{"path": cty.StringVal(filepath.Join(mnt, "new")), "mount": cty.StringVal(mnt),
			"mount_with": cty.StringVal("none"), "create_path": cty.True}, false, want("write to"))
	})
	t.Run("failing mount command", func(t *testing.T) {
		s, err := (&NAS{}).Prepare(context.Background(), instance(t, with(map[string]cty.Value{"mount_command": shCommand("echo no such share >&2; exit 32")})), false)
		if err == nil {
			_ = s.Release(context.Background())
			t.Fatal("Prepare succeeded")
		}
		if want := fmt.Sprintf(`target nas "home": mount %s: command /bin/sh -c 'echo no such share >&2; exit 32' exited with status 32; stderr:`+"\n  no such share", mnt); err.Error() != want {
			t.Fatalf("got  %s\nwant %s", err, want)
		}
	})
	t.Run("a bind mount from the same file system", func(t *testing.T) {
		// Listed in mountinfo, but on the parent's device: refused too,
		// since a NAS share never is.
		other := filepath.Join(parent, "other")
		if err := os.Mkdir(other, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(other, "runner"), 0o700); err != nil {
			t.Fatal(err)
		}
		run(t, "mount", "--bind", other, mnt)
		s, err := (&NAS{}).Prepare(context.Background(), instance(t, base), false)
		if err == nil {
			_ = s.Release(context.Background())
			t.Fatal("Prepare succeeded")
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("is not a mount point (same device as %s; listed in /proc/self/mountinfo as ", parent)) {
			t.Fatal(err)
		}
		run(t, "umount", mnt)
	})
	// Nothing was written to the bare directory by any of these.
	if got := tree(t, mnt); !slices.Equal(got, []string{"./", "runner/"}) {
		t.Errorf("the bare mount point now holds %q", got)
	}
}

func TestRefusesTheWrongFileSystem(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	repo := filepath.Join(mnt, "runner")
	// The mount command makes the repository, so that each refusal is
	// about the check under test and not a missing path.
	mountCmd := func(opts string) cty.Value {
		return shCommand(fmt.Sprintf("mount -t tmpfs -o size=1m,%s tmpfs %q && mkdir %q && touch %q/.nas-marker", opts, mnt, repo, mnt))
	}
	tests := []struct {
		name   string
		opts   string
		expect map[string]cty.Value
		want   string
	}{
		{"wrong uid", "uid=0,gid=0", map[string]cty.Value{"uid": cty.NumberIntVal(98)},
			fmt.Sprintf("owner of %s is uid 0, expected 98", mnt)},
		{"wrong gid", "uid=98,gid=100", map[string]cty.Value{"uid": cty.NumberIntVal(98), "gid": cty.NumberIntVal(401)},
			fmt.Sprintf("group of %s is gid 100, expected 401", mnt)},
		{"wrong fstype", "mode=755", map[string]cty.Value{"fstype": cty.StringVal("nfs4")},
			fmt.Sprintf("file system type of %s is tmpfs (from tmpfs), expected nfs4", mnt)},
		{"missing marker", "mode=755", map[string]cty.Value{"marker": cty.StringVal("sub/.other-marker")},
			fmt.Sprintf("marker %s/sub/.other-marker does not exist: is the right file system mounted at %s?", mnt, mnt)},
		{"all as expected", "uid=98,gid=401", map[string]cty.Value{"uid": cty.NumberIntVal(98), "gid": cty.NumberIntVal(401),
			"fstype": cty.StringVal("tmpfs"), "marker": cty.StringVal(".nas-marker")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := map[string]cty.Value{"path": cty.StringVal(repo), "mount": cty.StringVal(mnt),
				"mount_command": mountCmd(tt.opts), "expect": expectBlock(tt.expect)}
			if tt.want == "" {
				s := prepareOK(t, attrs, false)
				if err := s.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				prepareErr(t, attrs, false, `target nas "home": `+tt.want)
			}
			if mounted(t, mnt) {
				t.Fatal("left mounted")
			}
		})
	}
	// With the file system already mounted (by someone else), a refusal
	// must leave it mounted and untouched.
	t.Run("refusal on a foreign mount", func(t *testing.T) {
		mountTmpfs(t, mnt, "uid=7")
		if err := os.Mkdir(repo, 0o700); err != nil {
			t.Fatal(err)
		}
		attrs := map[string]cty.Value{"path": cty.StringVal(repo), "mount": cty.StringVal(mnt),
			"expect": expectBlock(map[string]cty.Value{"uid": cty.NumberIntVal(98)})}
		prepareErr(t, attrs, false, fmt.Sprintf(`target nas "home": owner of %s is uid 7, expected 98`, mnt))
		if !mounted(t, mnt) {
			t.Fatal("a refusal unmounted a foreign mount")
		}
		if got := tree(t, mnt); !slices.Equal(got, []string{"./", "runner/"}) {
			t.Errorf("the refused share now holds %q", got)
		}
	})
}

// roBindMount mounts a tmpfs at src (so that the bind mount is on another
// device than its parent) and binds it read-only at mnt.
func roBindMount(t *testing.T) (src, mnt string) {
	t.Helper()
	parent := t.TempDir()
	src, mnt = filepath.Join(parent, "src"), filepath.Join(parent, "nas")
	for _, d := range []string{src, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cleanupMounts(t, src)
	cleanupMounts(t, mnt) // registered last: runs first
	mountTmpfs(t, src)
	if err := os.Mkdir(filepath.Join(src, "runner"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "runner", "config"), []byte("cfg"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", src, mnt)
	run(t, "mount", "-o", "remount,bind,ro", mnt)
	return src, mnt
}

func TestRefusesAReadOnlyMount(t *testing.T) {
	needMounts(t)
	src, mnt := roBindMount(t)
	repo := filepath.Join(mnt, "runner")
	attrs := map[string]cty.Value{"path": cty.StringVal(repo), "mount": cty.StringVal(mnt)}
	prepareErr(t, attrs, false, fmt.Sprintf(`target nas "home": %s is mounted read-only`, mnt))

	// Without mount, the write test is what finds out (EROFS).
	prepareErr(t, map[string]cty.Value{"path": cty.StringVal(repo)}, false,
		fmt.Sprintf(`target nas "home": path %s is on a read-only file system`, repo))

	// Reading is fine on a read-only mount, and the mount stays.
	s := prepareOK(t, attrs, true)
	if got := get(t, s, "config", 0, 0); got != "cfg" {
		t.Errorf("config = %q", got)
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, mnt) {
		t.Fatal("Release unmounted a mount it did not make")
	}
	if got := tree(t, src); !slices.Equal(got, []string{"./", "runner/", "runner/config"}) {
		t.Errorf("the file system now holds %q", got)
	}
}

func TestPathMustBeOnTheMount(t *testing.T) {
	needMounts(t)
	parent, mnt := mountPoint(t, "nas")
	elsewhere := filepath.Join(parent, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, mnt)
	// A symlink on the share that leads off it.
	if err := os.Symlink(elsewhere, filepath.Join(mnt, "escape")); err != nil {
		t.Fatal(err)
	}
	prepareErr(t, map[string]cty.Value{"path": cty.StringVal(filepath.Join(mnt, "escape")), "mount": cty.StringVal(mnt)}, false,
		fmt.Sprintf(`target nas "home": path %s/escape (really %s) is not inside mount %s (really %s)`, mnt, elsewhere, mnt, mnt))
	prepareErr(t, map[string]cty.Value{"path": cty.StringVal(filepath.Join(mnt, "escape", "new")), "mount": cty.StringVal(mnt), "create_path": cty.True}, false,
		fmt.Sprintf(`target nas "home": path %s/escape/new (really %s) is not inside mount %s (really %s)`, mnt, elsewhere, mnt, mnt))
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("create_path created %v off the share", entries)
	}
	// A file system mounted inside the share is not the share.
	inner := filepath.Join(mnt, "inner")
	if err := os.Mkdir(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	cleanupMounts(t, inner)
	mountTmpfs(t, inner)
	s, err := (&NAS{}).Prepare(context.Background(), instance(t, map[string]cty.Value{"path": cty.StringVal(inner), "mount": cty.StringVal(mnt)}), false)
	if err == nil {
		_ = s.Release(context.Background())
		t.Fatal("Prepare accepted a path on a nested mount")
	}
	if want := fmt.Sprintf("path %s is on another file system (device ", inner); !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	// A mount point whose path has a space (\040 in mountinfo) is found.
	spaced := filepath.Join(mnt, "my nas")
	if err := os.Mkdir(spaced, 0o700); err != nil {
		t.Fatal(err)
	}
	cleanupMounts(t, spaced)
	s = prepareOK(t, map[string]cty.Value{"path": cty.StringVal(spaced + "/repo"), "mount": cty.StringVal(spaced),
		"mount_command": tmpfsCommand(spaced), "create_path": cty.True}, false)
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, spaced) {
		t.Fatal("not unmounted")
	}
}

// TestReleaseUnmountsAfterFailedWork: whatever happened between Prepare
// and Release, Release takes the mount down.
func TestReleaseUnmountsAfterFailedWork(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	attrs := map[string]cty.Value{"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt),
		"mount_command": tmpfsCommand(mnt), "create_path": cty.True}
	s := prepareOK(t, attrs, false)
	boom := errors.New("source failed")
	if err := s.Put(context.Background(), "data/x", iotestErrReader{boom}, 10); !errors.Is(err, boom) {
		t.Fatalf("Put = %v", err)
	}
	// The run is being stopped: Release gets a cancelled context and
	// must still unmount.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("Release after a failed run (cancelled context) did not unmount")
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestSharedMountStaysUntilLastRelease: two jobs on one target in
// parallel; the first to finish must not pull the share from under the
// other.
func TestSharedMountStaysUntilLastRelease(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	attrs := map[string]cty.Value{"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt),
		"mount_command": tmpfsCommand(mnt), "create_path": cty.True}
	a := prepareOK(t, attrs, false)
	b := prepareOK(t, attrs, true)
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, mnt) {
		t.Fatal("unmounted while another session uses the mount")
	}
	if err := b.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("not unmounted after the last session")
	}
}

func TestUnmountFailureIsReported(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	for _, tc := range []struct {
		umount cty.Value
		want   string
	}{
		{strList("/bin/false"), fmt.Sprintf(`target nas "home": unmount %s: command /bin/false exited with status 1`, mnt)},
		{strList("/bin/true"), fmt.Sprintf(`target nas "home": unmount %s: /bin/true succeeded but %s is still mounted (tmpfs from tmpfs)`, mnt, mnt)},
	} {
		s := prepareOK(t, map[string]cty.Value{"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt),
			"mount_command": tmpfsCommand(mnt), "umount_command": tc.umount, "create_path": cty.True}, false)
		if err := s.Release(context.Background()); err == nil || err.Error() != tc.want {
			t.Errorf("Release = %v\nwant %s", err, tc.want)
		}
		run(t, "umount", mnt)
	}
}

// TestConformanceOnAMount runs the conformance suite on a share the
// target mounts itself for each session, and checks that every Release
// took it down again.
func TestConformanceOnAMount(t *testing.T) {
	needMounts(t)
	targettest.Run(t, func(t *testing.T) sdk.Session {
		_, mnt := mountPoint(t, "nas")
		t.Cleanup(func() { // runs after the suite's Release
			if mounted(t, mnt) {
				t.Error("the share is still mounted after Release")
			}
		})
		return prepareOK(t, map[string]cty.Value{"path": cty.StringVal(mnt + "/repo"), "mount": cty.StringVal(mnt),
			"mount_command": tmpfsCommand(mnt), "create_path": cty.True,
			"expect": expectBlock(map[string]cty.Value{"fstype": cty.StringVal("tmpfs")})}, false)
	})
}

// TestReleaseOverRPCUnmounts: the same through the gRPC path, where the
// host's failed Put is a cancelled stream.
func TestReleaseOverRPCUnmounts(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	c := sdktest.Start(t, Plugin())
	tg, err := c.Target(t.Context(), TypeName)
	if err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{TypeName: TypeName, Address: "target.nas.home", Config: config.MustBuild(tg.Schema(), map[string]cty.Value{
		"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt), "mount_command": tmpfsCommand(mnt), "create_path": cty.True})}
	s, err := tg.Prepare(t.Context(), inst, false)
	if err != nil {
		t.Fatal(err)
	}
	if !mounted(t, mnt) {
		t.Fatal("not mounted")
	}
	boom := errors.New("source failed")
	if err := s.Put(t.Context(), "data/x", iotestErrReader{boom}, 10); !errors.Is(err, boom) {
		t.Fatalf("Put = %v", err)
	}
	if err := s.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("Release over RPC did not unmount")
	}
	// A refusal crosses the wire with its message.
	_, err = tg.Prepare(t.Context(), sdk.Instance{TypeName: TypeName, Address: "target.nas.home", Config: config.MustBuild(tg.Schema(), map[string]cty.Value{
		"path": cty.StringVal(mnt), "mount": cty.StringVal(mnt), "mount_with": cty.StringVal("none")})}, false)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`target nas "home": %s is not a mount point (same device as `, mnt)) {
		t.Fatalf("refusal over the wire: %v", err)
	}
}
