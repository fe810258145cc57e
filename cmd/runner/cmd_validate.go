package main

import (
	"context"
	"encoding/json"
	"fmt"
)

func init() {
	register(&command{
		name:  "validate",
		short: "Check the configuration without touching any server",
		long: `Parses and evaluates every *.hcl file of the configuration directory, decodes
every block with its plugin's schema and runs the plugins' own checks. Nothing is
mounted, no hook runs and no server is contacted.

EXIT STATUS
  0  the configuration is valid
  1  it is not: every problem is printed with its file, line and a snippet`,
		run: runValidate,
	})
}

func runValidate(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 {
		return usageError("validate takes no arguments (use -C DIR to choose the configuration)")
	}
	l, err := g.load(ctx)
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(map[string]any{"valid": true, "jobs": len(l.cfg.Jobs)})
	}
	_, err = fmt.Fprintf(g.stdout, "The configuration in %s is valid: %s, %s, %s, %s.\n", g.dir,
		count(len(l.cfg.Jobs), "job", "jobs"), count(countInstances(l.cfg.Sources), "source", "sources"),
		count(countInstances(l.cfg.Targets), "target", "targets"), count(len(l.cfg.Policies), "policy", "policies"))
	return err
}
