package nas

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestMain keeps the tests' mount records out of /run/runner.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nas-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(RunDirEnv, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// claimsDir is where the records of mnt live.
func claimsDir(t *testing.T, mnt string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(mnt)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := openClaims(real)
	if err != nil {
		t.Fatal(err)
	}
	cl.close()
	return cl.dir
}

// A run killed with kill -9 leaves its mount up. The next run adopts it
// and takes it down when it is done.
func TestMountLeftByAKilledRunIsAdopted(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	attrs := map[string]cty.Value{"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt),
		"mount_command": tmpfsCommand(mnt), "create_path": cty.True}
	// The killed run: it mounted (the marker) and claimed it as a process
	// that no longer exists.
	mountTmpfs(t, mnt)
	dir := claimsDir(t, mnt)
	for _, f := range []string{markerName, "user-999999999-12345"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := prepareOK(t, attrs, false)
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("the mount a killed run left is still up after the next run")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 { // only "point"
		t.Errorf("records left: %v", ents)
	}
}

// Two runner processes on one mount: the one that releases first leaves
// it to the other, which unmounts it.
func TestMountStaysWhileAnotherRunnerProcessUsesIt(t *testing.T) {
	needMounts(t)
	_, mnt := mountPoint(t, "nas")
	attrs := map[string]cty.Value{"path": cty.StringVal(mnt + "/r"), "mount": cty.StringVal(mnt),
		"mount_command": tmpfsCommand(mnt), "create_path": cty.True}
	s := prepareOK(t, attrs, false)
	// Another live process claims the mount.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	claim := fmt.Sprintf("user-%d-%s", other.Process.Pid, startTime(other.Process.Pid))
	if err := os.WriteFile(filepath.Join(claimsDir(t, mnt), claim), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, mnt) {
		t.Fatal("unmounted while another runner process uses the mount")
	}
	// The other process goes away without cleaning up; the next run here
	// is then the last user and unmounts.
	_ = other.Process.Kill()
	_ = other.Wait()
	s = prepareOK(t, attrs, true)
	if err := s.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Fatal("the last runner process did not unmount")
	}
}
