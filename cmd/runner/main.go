// Command runner is a declarative, plugin-driven backup and replication
// runner. See the README for the commands and the configuration language.
package main

import (
	"os"
	"runtime/debug"
)

// defaultMemoryLimit is a soft limit for the Go heap. A backup's garbage
// (read buffers, chunks) would otherwise let the heap grow to twice its
// live size before a collection; with the limit the collector works a
// little harder instead, which keeps a backup well under 100 MiB. Operators
// can set GOMEMLIMIT to choose another.
const defaultMemoryLimit = 64 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
