package nas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RunDirEnv names the directory for runtime records shared by the runner
// processes of one machine (default /run/runner as root, which the system
// empties at boot, as it does the mounts the records describe).
const RunDirEnv = "RUNNER_RUN_DIR"

// claims are the cross-process records of one mount point, in
// RUN_DIR/nas-mounts/<hash>/:
//
//   - "mounted-by-runner": a runner mounted what is mounted there now, so
//     the last runner process that uses it unmounts it;
//   - "user-<pid>-<start>": a process (a runner's nas plugin) uses it now.
//
// They make the mount right across processes: two runner invocations on
// one NAS (two cron entries) never unmount it under each other, and a
// mount left by a run that was killed (kill -9: nothing could unmount it)
// is adopted by the next run, which takes it down when it is done.
// Every change happens under an flock on the directory.
type claims struct {
	dir  string
	lock *os.File
}

func runDir() string {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/runner"
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("runner-%d", os.Geteuid()))
}

// openClaims locks the records of the mount point realPoint.
func openClaims(realPoint string) (*claims, error) {
	sum := sha256.Sum256([]byte(realPoint))
	dir := filepath.Join(runDir(), "nas-mounts", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount records: %w", err)
	}
	// For a person looking at the directory.
	_ = os.WriteFile(filepath.Join(dir, "point"), []byte(realPoint+"\n"), 0o600)
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("mount records: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("mount records: lock %s: %w", dir, err)
	}
	return &claims{dir: dir, lock: f}, nil
}

func (c *claims) close() {
	_ = syscall.Flock(int(c.lock.Fd()), syscall.LOCK_UN)
	_ = c.lock.Close()
}

const markerName = "mounted-by-runner"

func (c *claims) runnerMounted() bool {
	_, err := os.Stat(filepath.Join(c.dir, markerName))
	return err == nil
}

func (c *claims) setRunnerMounted(on bool) error {
	p := filepath.Join(c.dir, markerName)
	if on {
		return os.WriteFile(p, nil, 0o600)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// self is this process's claim name.
func self() string {
	return fmt.Sprintf("user-%d-%s", os.Getpid(), startTime(os.Getpid()))
}

// startTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), which tells a live process from a later one that
// reused its pid; "" if the process does not exist or is a zombie (it
// ended; its parent has not reaped it yet, or never will if it was killed
// and the system's init does not reap).
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return ""
	}
	return fields[19]
}

func (c *claims) add() error {
	return os.WriteFile(filepath.Join(c.dir, self()), nil, 0o600)
}

func (c *claims) remove() error {
	if err := os.Remove(filepath.Join(c.dir, self())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// others removes the claims of processes that are gone and counts those
// of live processes other than this one.
func (c *claims) others() int {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return 0
	}
	me, n := self(), 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "user-") || name == me {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(name, "user-"), "-", 2)
		pid, err := strconv.Atoi(parts[0])
		if err == nil && len(parts) == 2 && parts[1] != "" && startTime(pid) == parts[1] {
			n++
			continue
		}
		_ = os.Remove(filepath.Join(c.dir, name))
	}
	return n
}
