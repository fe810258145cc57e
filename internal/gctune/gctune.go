// Package gctune sets runner's garbage collection target, shared by the
// runner binary (and so its plugin processes) and the benchmarks that
// measure its code outside it.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent: a backup's garbage (read buffers, chunks) would let the heap
// grow to twice its live size before a collection (GOGC=100); collecting
// at 1.5x keeps peak memory about a quarter lower for a few percent more
// CPU. A fixed soft limit (GOMEMLIMIT) was tried and dropped: with
// 200,000 files the live heap (change cache, trees) passes any small
// limit and the collector then runs without pause, doubling CPU time.
const Percent = 50

// Apply sets Percent unless the operator set GOGC (GOMEMLIMIT is left to
// the runtime, which reads it itself).
func Apply() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
}
