// Command runner is a declarative, plugin-driven backup and replication
// runner. See the README for the commands and the configuration language.
package main

import (
	"os"

	"github.com/backup-runner/runner/internal/gctune"
)

func main() {
	gctune.Apply()
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
