// Command runner is a declarative, plugin-driven backup and replication
// runner. See the README for the commands and the configuration language.
package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent: a backup's garbage (read buffers, chunks) would let
// the heap grow to twice its live size before a collection (GOGC=100);
// collecting at 1.5x keeps peak memory about a quarter lower for a few
// percent more CPU. A fixed soft limit (GOMEMLIMIT) was tried and dropped:
// with 200,000 files the live heap (change cache, trees) passes any small
// limit and the collector then runs without pause, doubling CPU time.
// Operators can still set GOGC or GOMEMLIMIT.
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
