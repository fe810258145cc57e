package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// rssWatchCmd samples the memory of a process's descendants (not the
// process itself: bench/run points it at /usr/bin/time) until the process
// exits or becomes a zombie, then writes the peak of their summed PSS
// (proportional set size: each shared page divided among the processes
// sharing it, so a binary's text mapped by several processes is counted
// once) in KiB, and the number of samples. Where smaps_rollup is missing,
// RSS stands in for PSS.
func rssWatchCmd(args []string) error {
	fs := flag.NewFlagSet("rsswatch", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process whose descendants are measured")
	out := fs.String("o", "", "file to write the peak KiB to (default stdout)")
	interval := fs.Duration("interval", 100*time.Millisecond, "sampling interval")
	_ = fs.Parse(args)
	if *pid <= 0 {
		usage()
	}
	var peak, samples int64
	for {
		state, ok := procState(*pid)
		if !ok || state == 'Z' {
			break
		}
		var sum int64
		for _, c := range descendants(*pid) {
			sum += pssKiB(c)
		}
		peak = max(peak, sum)
		samples++
		time.Sleep(*interval)
	}
	line := fmt.Sprintf("%d %d\n", peak, samples)
	if *out == "" {
		_, err := os.Stdout.WriteString(line)
		return err
	}
	return os.WriteFile(*out, []byte(line), 0o644)
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

// descendants lists pid's children, grandchildren and so on, through
// /proc/PID/task/TID/children.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range bytes.Fields(b) {
				c, err := strconv.Atoi(string(f))
				if err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// pssKiB reads a process's PSS from /proc/PID/smaps_rollup, or its RSS
// from /proc/PID/statm where that is missing; 0 if the process is gone.
func pssKiB(pid int) int64 {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "Pss:" {
				n, _ := strconv.ParseInt(string(f[1]), 10, 64)
				return n
			}
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n * int64(os.Getpagesize()) / 1024
}
