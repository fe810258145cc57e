package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

func init() {
	register(&command{
		name:  "plugins",
		short: "List the plugins found and what each provides",
		long: `Lists the built-in plugins, the plugins pinned by plugin blocks in the
configuration (if it loads) and the runner-plugin-NAME executables in the plugin
directories ($RUNNER_PLUGIN_PATH, ~/.runner/plugins, /usr/local/lib/runner/plugins and
runner { plugin_dirs }), with where each is, its version, and the block types and
functions it provides. External plugins are started to ask them.

EXIT STATUS
  0  every plugin found could be started
  1  some plugin could not (the error is shown in its row)`,
		run: runPlugins,
	})
}

func runPlugins(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 {
		return usageError("plugins takes no arguments")
	}
	cat, err := newCatalog(g)
	if err != nil {
		return err
	}
	defer cat.Close()
	// Pinned plugins and plugin_dirs come from the configuration when there
	// is one; without a configuration, built-ins and directories are listed.
	if _, statErr := statDir(g.dir); statErr == nil {
		l, err := g.loadWith(ctx, cat)
		if err != nil {
			return err
		}
		_ = l
	}
	infos, err := cat.List(ctx)
	if err != nil {
		return err
	}
	failed := false
	for _, p := range infos {
		if p.Err != nil {
			failed = true
		}
	}
	if g.json {
		type row struct {
			Name       string   `json:"name"`
			Origin     string   `json:"origin"`
			Where      string   `json:"where"`
			Version    string   `json:"version,omitempty"`
			BlockTypes []string `json:"block_types"`
			Functions  []string `json:"functions"`
			Shadowed   string   `json:"shadowed,omitempty"`
			Error      string   `json:"error,omitempty"`
		}
		rows := []row{}
		for _, p := range infos {
			r := row{Name: p.Name, Origin: p.Origin, Where: p.Where, Version: p.Version,
				BlockTypes: nonNil(p.BlockTypes), Functions: nonNil(p.Functions), Shadowed: p.Shadowed}
			if p.Err != nil {
				r.Error = p.Err.Error()
			}
			rows = append(rows, r)
		}
		if err := json.NewEncoder(g.stdout).Encode(rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tWHERE\tPROVIDES")
		for _, p := range infos {
			provides := strings.Join(append(append([]string{}, p.BlockTypes...), funcNames(p.Functions)...), ", ")
			if p.Err != nil {
				provides = "ERROR: " + p.Err.Error()
			}
			if p.Shadowed != "" {
				provides += " (shadows " + p.Shadowed + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, dash(p.Version), p.Where, provides)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed {
		return silentExit(exitError)
	}
	return nil
}

func funcNames(fns []string) []string {
	out := make([]string, len(fns))
	for i, f := range fns {
		out[i] = f + "()"
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
