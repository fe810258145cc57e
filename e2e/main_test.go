// Package e2e builds the runner binary and drives it as an operator would:
// real configs, real plugin processes, real hooks, signals and exit codes.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	binDir    string // built executables
	runnerBin string
	repoRoot  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	var err error
	binDir, err = os.MkdirTemp("", "runner-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	runnerBin = filepath.Join(binDir, "runner")
	builds := [][2]string{
		{runnerBin, "./cmd/runner"},
		{filepath.Join(binDir, "runner-plugin-crash"), "./e2e/testdata/crashplugin"},
		{filepath.Join(binDir, "runner-plugin-slow"), "./e2e/testdata/slowplugin"},
		{filepath.Join(binDir, "wordpress-demo"), "./examples/wordpress-demo"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	// The example plugin is its own module.
	cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "runner-plugin-hello"), ".")
	cmd.Dir = filepath.Join(repoRoot, "examples", "plugins", "hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build example plugin: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

// runner runs the binary with args in a clean environment plus env.
func runner(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(runnerBin, args...)
	cmd.Env = append(baseEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run runner: %v", err)
	}
	return result{out.String(), errb.String(), code}
}

func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "RUNNER_PLUGIN_PATH=", "NO_COLOR=1"}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// writeConfig writes a config directory. Unless a file has a runner block,
// it adds one with a state_dir of its own, so tests never write to
// /var/lib/runner.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	hasRunner := false
	for _, content := range files {
		hasRunner = hasRunner || strings.Contains(content, "runner {")
	}
	if !hasRunner {
		files["state.hcl"] = fmt.Sprintf("runner {\n  state_dir = %q\n}\n", t.TempDir())
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mustContain(t *testing.T, r result, parts ...string) {
	t.Helper()
	all := r.stdout + r.stderr
	for _, p := range parts {
		if !strings.Contains(all, p) {
			t.Errorf("output lacks %q\n%s", p, r)
		}
	}
}

// runnerCmd prepares a background `runner apply` on dir.
func runnerCmd(dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(runnerBin, "-C", dir, "apply")
	cmd.Env = append(baseEnv(), env...)
	return cmd
}

// utimesNoFollow sets a path's access and modification times without
// following a final symlink.
func utimesNoFollow(path string, ts []syscall.Timespec) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{unix.Timespec(ts[0]), unix.Timespec(ts[1])}, unix.AT_SYMLINK_NOFOLLOW)
}

// packBytes sums the sizes of the finished packs under a repository
// directory (not the temporary files of packs being written).
func packBytes(repoDir string) (n int64) {
	_ = filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.Contains(d.Name(), "tmp") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// waitForPacks waits until a backup under way has stored at least min
// bytes of packs, killing cmd and failing the test after a minute.
func waitForPacks(t *testing.T, cmd *exec.Cmd, repoDir string, min int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for packBytes(repoDir) < min {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the backup never got a third of the way")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
