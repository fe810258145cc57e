package main

import (
	"context"
	"fmt"

	"github.com/backup-runner/runner/plugins/builtin"
	"github.com/backup-runner/runner/plugins/sdk"
)

func init() {
	register(&command{
		name:   "internal-plugin",
		args:   "NAME",
		short:  "Serve a built-in plugin (started by runner itself)",
		hidden: true,
		run:    runInternalPlugin,
	})
}

// runInternalPlugin is how built-in plugins run out of process: the host
// starts this same binary with the plugin's name.
func runInternalPlugin(_ context.Context, _ *globals, args []string) error {
	if len(args) != 1 {
		return usageError("internal-plugin takes one plugin name")
	}
	p, ok := builtin.Lookup(args[0])
	if !ok {
		return fmt.Errorf("no built-in plugin %q", args[0])
	}
	sdk.Serve(p)
	return nil
}
