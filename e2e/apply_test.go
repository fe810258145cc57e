package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// siteTree makes a small file tree to back up.
func siteTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for i := 0; i < 20; i++ {
		p := filepath.Join(root, fmt.Sprintf("dir%d", i%4), fmt.Sprintf("file%d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readLog(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// The order hooks run in: the target's hooks (VPN) wrap the job's own, and
// everything comes down in reverse order with the job's status.
func TestApplyRunsHooksAroundTheJob(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	site, nas, logf := siteTree(t), t.TempDir(), filepath.Join(t.TempDir(), "hooks.log")
	rec := func(word string) string {
		return fmt.Sprintf(`["/bin/sh", "-c", "echo %s-$RUNNER_STATUS >> %s"]`, word, logf)
	}
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
hook "vpn" "home" {
  up    = %s
  down  = %s
  check = %q
}
hook "exec" "around" {
  before = %s
  after  = %s
  always = %s
}
target "nas" "home" {
  path  = %q
  hooks = [hook.vpn.home]
}
source "files" "site" {
  paths = [%q]
}
job "site" {
  source = source.files.site
  target = target.nas.home
  hooks  = [hook.exec.around]
}
`, rec("vpnup"), rec("vpndown"), ln.Addr().String(), rec("before"), rec("after"), rec("always"), nas, site)})
	mustInit(t, dir)
	// init brought the target's VPN up and down too; start the log afresh.
	if got := strings.Join(readLog(t, logf), " "); got != "vpnup- vpndown-success" {
		t.Fatalf("init ran hooks: %s", got)
	}
	if err := os.Remove(logf); err != nil {
		t.Fatal(err)
	}

	r := runner(t, nil, "-C", dir, "apply")
	if r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	mustContain(t, r, "job site: ok", "20 files")
	got := strings.Join(readLog(t, logf), " ")
	want := "vpnup- before- after-success always-success vpndown-success"
	if got != want {
		t.Fatalf("hook order:\n got %s\nwant %s", got, want)
	}

	// A dry run says so first, brings up only what reading needs (the
	// VPN to the target), and runs no exec hook command.
	if err := os.Remove(logf); err != nil {
		t.Fatal(err)
	}
	r = runner(t, nil, "-C", dir, "apply", "--dry-run", "-force")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Dry run:") {
		t.Fatalf("dry run: %s", r)
	}
	mustContain(t, r, "would run before")
	if got := strings.Join(readLog(t, logf), " "); got != "vpnup- vpndown-success" {
		t.Fatalf("dry run ran hooks: %s", got)
	}
}

// A failing hook fails its job, another job still runs, exit code 3.
func TestFailingJobDoesNotStopOthers(t *testing.T) {
	site, nas := siteTree(t), t.TempDir()
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
hook "exec" "broken" {
  before = ["/bin/sh", "-c", "echo no route to host >&2; exit 4"]
}
target "nas" "home" {
  path = %q
}
source "files" "site" {
  paths = [%q]
}
job "good" {
  source = source.files.site
  target = target.nas.home
}
job "bad" {
  source = source.files.site
  target = target.nas.home
  hooks  = [hook.exec.broken]
}
`, nas, site)})
	mustInit(t, dir)
	r := runner(t, nil, "-C", dir, "apply")
	if r.code != 3 {
		t.Fatalf("want exit 3: %s", r)
	}
	mustContain(t, r, "job good: ok", "job bad: FAILED", "hook.exec.broken", "no route to host")
}

// A plugin that crashes mid-capture fails only its job, with an error
// naming the plugin.
func TestCrashingPluginFailsOnlyItsJob(t *testing.T) {
	site, nas := siteTree(t), t.TempDir()
	crash := filepath.Join(binDir, "runner-plugin-crash")
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
plugin "crash" {
  path   = %q
  sha256 = %q
}
target "nas" "home" {
  path = %q
}
source "crash" "boom" {
}
source "files" "site" {
  paths = [%q]
}
job "boom" {
  source = source.crash.boom
  target = target.nas.home
}
job "site" {
  source = source.files.site
  target = target.nas.home
}
`, crash, sha256File(t, crash), nas, site)})
	mustInit(t, dir)
	r := runner(t, nil, "-C", dir, "apply")
	if r.code != 3 {
		t.Fatalf("want exit 3: %s", r)
	}
	mustContain(t, r, "job site: ok", "job boom: FAILED", `plugin "crash"`)
}

// pluginProcesses lists live processes started from the test's binaries.
func pluginProcesses(t *testing.T) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, binDir) {
			// A zombie has an empty cmdline, so this one is alive.
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// Interrupting or killing runner while a plugin is busy leaves no plugin
// process behind.
func TestNoPluginOutlivesRunner(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			slow := filepath.Join(binDir, "runner-plugin-slow")
			ready := t.TempDir()
			dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
plugin "slow" {
  path   = %q
  sha256 = %q
}
hook "exec" "noop" {
  before = ["/bin/true"]
}
target "nas" "home" {
  path = %q
}
source "slow" "s" {
}
job "s" {
  source = source.slow.s
  target = target.nas.home
  hooks  = [hook.exec.noop]
}
`, slow, sha256File(t, slow), t.TempDir())})
			mustInit(t, dir)
			cmd := runnerCmd(dir, "SLOWPLUGIN_READY_DIR="+ready)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(ready, "capturing")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatal("the slow plugin never started capturing")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(pluginProcesses(t)) < 2 {
				t.Fatalf("expected runner and its plugins to be running, found %v", pluginProcesses(t))
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			deadline = time.Now().Add(10 * time.Second)
			for {
				left := pluginProcesses(t)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("plugin processes outlived runner after %s: %v", sig, left)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// mustInit creates the repository on target.nas.home of the config in dir.
func mustInit(t *testing.T, dir string) {
	t.Helper()
	if r := runner(t, nil, "-C", dir, "init", "target.nas.home"); r.code != 0 {
		t.Fatalf("init: %s", r)
	}
}
