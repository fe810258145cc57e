package priority

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// On Linux a nice value belongs to a thread, not to the process: setting
// it for the process id changes only the main thread. So every thread is
// set, and since a new thread starts with its creator's value, passes
// are repeated until one finds no thread it has not seen (the Go runtime
// may start threads meanwhile); threads created after that inherit.
func lower(n int) error {
	seen := map[int]bool{}
	for pass := 0; pass < 100; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("lower the priority: list threads: %w", err)
		}
		fresh := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || seen[tid] {
				continue
			}
			seen[tid], fresh = true, true
			if err := lowerThread(tid, n); err != nil {
				return err
			}
		}
		if !fresh {
			return nil
		}
	}
	return errors.New("lower the priority: threads kept appearing")
}

func lowerThread(tid, n int) error {
	// The raw system call returns 20 - nice, so that it is never negative.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if errors.Is(err, unix.ESRCH) {
		return nil // the thread has exited
	}
	if err != nil {
		return fmt.Errorf("lower the priority: thread %d: %w", tid, err)
	}
	if 20-raw >= n {
		return nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("lower the priority to nice %d: thread %d: %w", n, tid, err)
	}
	return nil
}
