package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Interrupting apply in the middle of a backup to a NAS reached through a
// VPN: SIGTERM brings the VPN and the mount down before runner exits; after
// kill -9 (nothing can run then) the next apply adopts the mount, says it
// resumes the interrupted backup, reuses what was uploaded, and leaves no
// mount and no VPN up. Nothing is lost: the repository checks clean.
func TestInterruptedApplyLeavesNothingUpAndResumes(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			base := t.TempDir()
			data, store, mnt, state := filepath.Join(base, "data"), filepath.Join(base, "store"), filepath.Join(base, "nas"), filepath.Join(base, "state")
			vpnLog, vpnUp := filepath.Join(base, "vpn.log"), filepath.Join(base, "vpn-is-up")
			for _, d := range []string{data, store, mnt} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The NAS's disk: a tmpfs that lives as long as the test; the
			// share is a bind mount of it, made by the target for each run.
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", store).CombinedOutput(); err != nil {
				t.Fatalf("mount tmpfs (needs root): %v\n%s", err, out)
			}
			t.Cleanup(func() {
				_ = exec.Command("umount", "-l", mnt).Run()
				_ = exec.Command("umount", "-l", store).Run()
			})
			rnd := rand.New(rand.NewSource(4))
			const files, fileSize = 40, 4 << 20
			total := float64(files * fileSize)
			buf := make([]byte, fileSize)
			for i := 0; i < files; i++ {
				rnd.Read(buf)
				if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%03d.bin", i)), buf, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"RUNNER_RUN_DIR=" + filepath.Join(base, "run")}
			dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
runner {
  state_dir = %q
}
hook "vpn" "office" {
  up   = ["/bin/sh", "-c", "echo up >> %s; touch %s"]
  down = ["/bin/sh", "-c", "echo down >> %s; rm -f %s"]
}
target "nas" "home" {
  path          = "%s/runner"
  create_path   = true
  mount         = %q
  mount_command = ["mount", "--bind", %q, %q]
  hooks         = [hook.vpn.office]
}
source "files" "data" {
  paths = [%q]
}
job "data" {
  source = source.files.data
  target = target.nas.home
}
`, state, vpnLog, vpnUp, vpnLog, vpnUp, mnt, mnt, store, mnt, data)})
			if r := runner(t, env, "-C", dir, "init", "target.nas.home"); r.code != 0 {
				t.Fatalf("init: %s", r)
			}
			checkDown := func(when string) {
				t.Helper()
				if mounted(mnt) {
					out, _ := exec.Command("sh", "-c", "ls -laR "+filepath.Join(base, "run")+"; ps aux | grep runner").CombinedOutput()
					t.Fatalf("%s: the share is still mounted\n%s", when, out)
				}
				if fileExists(vpnUp) {
					t.Fatalf("%s: the VPN is still up", when)
				}
			}
			checkDown("after init")
			_ = os.Remove(vpnLog)

			cmd := exec.Command(runnerBin, "-C", dir, "apply")
			cmd.Env = append(baseEnv(), env...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			repoDir := filepath.Join(store, "runner")
			waitForPacks(t, cmd, repoDir, int64(total/3))
			if !mounted(mnt) || !fileExists(vpnUp) {
				t.Fatalf("during the backup: mounted %v, VPN up %v", mounted(mnt), fileExists(vpnUp))
			}
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			uploaded := float64(packBytes(repoDir))
			if uploaded >= total {
				t.Skipf("the backup finished before it was interrupted (%v of %v bytes)", uploaded, total)
			}
			if sig == syscall.SIGTERM {
				checkDown("after SIGTERM")
				if got := readLog(t, vpnLog); strings.Join(got, " ") != "up down" {
					t.Fatalf("VPN hook ran %q, want up down", got)
				}
			} else if !mounted(mnt) || !fileExists(vpnUp) {
				t.Fatalf("after kill -9 nothing could come down, yet: mounted %v, VPN up %v", mounted(mnt), fileExists(vpnUp))
			}

			r := runner(t, env, "-C", dir, "-json", "apply")
			if r.code != 0 {
				t.Fatalf("apply after %s: %s", sig, r)
			}
			var out struct {
				Jobs []struct {
					Status     string
					AddedBytes float64 `json:"added_bytes"`
					Resumed    string
					Notes      []string
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Jobs) != 1 || out.Jobs[0].Status != "success" {
				t.Fatalf("apply after %s: %v\n%s", sig, err, r)
			}
			job := out.Jobs[0]
			if sig == syscall.SIGKILL {
				if job.Resumed == "" || !strings.Contains(strings.Join(job.Notes, " "), "resuming the interrupted run") {
					t.Errorf("the run after kill -9 did not say it resumed: %+v", job)
				}
				if !strings.Contains(r.stderr, "resuming interrupted backup of job data started at") {
					t.Errorf("no log line about resuming:\n%s", r.stderr)
				}
			}
			// What the interrupted run uploaded is reused: the second adds at
			// most the rest plus a pack of slack.
			if job.AddedBytes > total-uploaded+float64(20<<20) {
				t.Errorf("the second run added %.0f bytes; the first had uploaded %.0f of %.0f", job.AddedBytes, uploaded, total)
			}
			checkDown("after the next apply")
			if r := runner(t, env, "-C", dir, "check", "data"); r.code != 0 {
				t.Fatalf("check: %s", r)
			}
			checkDown("after check")
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
