package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountTmpfs mounts a small tmpfs at dir for the test (root only).
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the NAS tests need root): %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func nasConfig(t *testing.T, data, mnt, extra string) string {
	return writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
target "nas" "home" {
  path        = "%s/runner"
  create_path = true
  mount       = %q
%s
}
source "files" "data" {
  paths = [%q]
}
job "data" {
  source = source.files.data
  target = target.nas.home
}
`, mnt, mnt, extra, data)})
}

// The NAS target mounts its share for the run and unmounts it after, and
// refuses, each with its own message and without writing a byte, a mount
// point with nothing mounted, a share with the wrong owner, and a
// read-only share.
func TestNASTargetWithRealMounts(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("mounted for the run and unmounted after", func(t *testing.T) {
		// The "NAS" is a tmpfs standing for the server's disk; the target
		// bind-mounts it at the mount point for each run.
		share, mnt := t.TempDir(), t.TempDir()
		mountTmpfs(t, share)
		dir := nasConfig(t, data, mnt, fmt.Sprintf(`  mount_command = ["mount", "--bind", %q, %q]
  expect {
    fstype = "tmpfs"
  }`, share, mnt))
		t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
		out := filepath.Join(t.TempDir(), "out")
		for _, args := range [][]string{
			{"init", "target.nas.home"},
			{"apply"},
			{"restore", "data", "--to", out},
		} {
			r := runner(t, nil, append([]string{"-C", dir}, args...)...)
			if r.code != 0 {
				t.Fatalf("%v: %s", args, r)
			}
			if mounted(mnt) {
				t.Fatalf("the share is still mounted after %v", args)
			}
		}
		if b, err := os.ReadFile(filepath.Join(out, filepath.Base(data), "f.txt")); err != nil || string(b) != "hello" {
			t.Fatalf("restored f.txt: %q, %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(share, "runner", "config")); err != nil {
			t.Fatalf("the repository is not on the share: %v", err)
		}
		if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
			t.Fatalf("something was written to the bare mount point: %v", entries)
		}
	})

	t.Run("nothing mounted", func(t *testing.T) {
		mnt := t.TempDir()
		dir := nasConfig(t, data, mnt, `  mount_with = "none"`)
		r := runner(t, nil, "-C", dir, "init", "target.nas.home")
		if r.code != 1 {
			t.Fatalf("init on a bare mount point: %s", r)
		}
		mustContain(t, r, mnt+" is not a mount point", "refusing to write to the bare directory")
		if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
			t.Fatalf("something was written to the bare mount point: %v", entries)
		}
	})

	t.Run("wrong owner", func(t *testing.T) {
		mnt := t.TempDir()
		mountTmpfs(t, mnt)
		dir := nasConfig(t, data, mnt, `  mount_with = "none"
  expect {
    uid = 98
  }`)
		r := runner(t, nil, "-C", dir, "init", "target.nas.home")
		if r.code != 1 {
			t.Fatalf("init on a share with the wrong owner: %s", r)
		}
		mustContain(t, r, "owner of "+mnt+" is uid 0, expected 98")
		if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
			t.Fatalf("something was written to the share: %v", entries)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		mnt := t.TempDir()
		mountTmpfs(t, mnt)
		if err := os.MkdirAll(filepath.Join(mnt, "runner"), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
			t.Fatalf("remount read-only: %v\n%s", err, out)
		}
		dir := nasConfig(t, data, mnt, `  mount_with = "none"`)
		r := runner(t, nil, "-C", dir, "init", "target.nas.home")
		if r.code != 1 {
			t.Fatalf("init on a read-only share: %s", r)
		}
		mustContain(t, r, mnt+" is mounted read-only")
	})
}
