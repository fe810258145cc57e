//go:build linux

package priority

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNices reads the nice value of every thread of this process from
// /proc (field 19 of stat, after the parenthesized command name).
func threadNices(t *testing.T) map[string]int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("list threads: %v", err)
	}
	out := map[string]int{}
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // exited
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		n, err := strconv.Atoi(f[16]) // field 19 overall
		if err != nil {
			t.Fatalf("%s: %q", d, b)
		}
		out[d] = n
	}
	return out
}

// callingNice is the nice value of the calling thread (the raw system
// call returns 20 - nice).
func callingNice(t *testing.T) int {
	t.Helper()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	return 20 - raw
}

// One test, in order: the process's nice value only ever goes up.
func TestLowerSetsEveryThreadAndChildrenInheritIt(t *testing.T) {
	if start := callingNice(t); start >= 5 {
		t.Fatalf("test process already at nice %d; the test needs to start below 5", start)
	}
	if err := Lower(5); err != nil {
		t.Fatal(err)
	}
	for tid, n := range threadNices(t) {
		if n != 5 {
			t.Errorf("thread %s at nice %d after Lower(5)", tid, n)
		}
	}
	// A child started by any thread inherits it.
	out, err := exec.Command("sh", "-c", "cut -d' ' -f19 /proc/$$/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "5" {
		t.Errorf("child process at nice %s, want 5", got)
	}
	// Never raised: a lower request leaves it, 0 is "unchanged".
	for _, n := range []int{3, 0} {
		if err := Lower(n); err != nil {
			t.Fatal(err)
		}
		if got := callingNice(t); got != 5 {
			t.Errorf("Lower(%d) changed nice 5 to %d", n, got)
		}
	}
	for _, bad := range []int{-1, 20} {
		if err := Lower(bad); err == nil || !strings.Contains(err.Error(), strconv.Itoa(bad)) {
			t.Errorf("Lower(%d): %v, want an error naming it", bad, err)
		}
	}
}
