package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/builtin"
	"github.com/backup-runner/runner/plugins/host"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/runner"
)

// loaded is an evaluated configuration with the plugin catalog that
// resolved it; close stops every plugin process.
type loaded struct {
	cfg     *config.Config
	mod     *config.Module
	cat     *host.Catalog
	logFile *os.File
}

func (l *loaded) close() {
	l.cat.Close()
	if l.logFile != nil {
		_ = l.logFile.Close()
	}
}

func newCatalog(g *globals) (*host.Catalog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the runner executable: %w", err)
	}
	return host.NewCatalog(host.Options{
		Builtins: builtin.All(),
		SelfExe:  exe,
		Dirs:     host.DefaultDirs(),
		Logger:   g.log,
	}), nil
}

// load evaluates the configuration and prints its diagnostics. On errors it
// returns an exit error after printing them; the caller closes l if non-nil.
func (g *globals) load(ctx context.Context) (*loaded, error) {
	cat, err := newCatalog(g)
	if err != nil {
		return nil, err
	}
	return g.loadWith(ctx, cat)
}

// loadWith evaluates the configuration with an existing catalog, which it
// fills with the configuration's pinned plugins and plugin directories.
func (g *globals) loadWith(ctx context.Context, cat *host.Catalog) (*loaded, error) {
	l := &loaded{cat: cat}
	cfg, mod, diags := config.Load(ctx, g.dir, config.Options{
		Vars:     g.vars,
		VarFiles: g.varFiles,
		Resolver: cat,
		OnPlugins: func(decls []*config.PluginDecl, dirs []string) hcl.Diagnostics {
			cat.AddDirs(dirs...)
			var ds hcl.Diagnostics
			for _, d := range decls {
				if err := cat.AddPinned(d.Name, d.Path, d.SHA256, d.DeclRange.String()); err != nil {
					ds = append(ds, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin refused", Detail: err.Error(), Subject: d.DeclRange.Ptr()})
				}
			}
			return ds
		},
	})
	l.cfg, l.mod = cfg, mod
	if len(diags) > 0 {
		g.printDiagnostics(mod, diags)
	}
	if diags.HasErrors() {
		return l, silentExit(exitError)
	}
	return l, nil
}

func (g *globals) printDiagnostics(mod *config.Module, diags hcl.Diagnostics) {
	if g.json {
		_ = json.NewEncoder(g.stderr).Encode(map[string]any{"diagnostics": config.ToJSON(diags)})
		return
	}
	_ = config.WriteDiagnostics(g.stderr, mod.Files(), diags, 100, g.color())
}

func statDir(dir string) (os.FileInfo, error) { return os.Stat(dir) }

func countInstances(blocks []*config.Block) int {
	n := 0
	for _, b := range blocks {
		n += len(b.Instances)
	}
	return n
}

// engine returns an engine whose plugin processes come from the catalog.
func (l *loaded) engine(g *globals) *runner.Engine {
	return &runner.Engine{Config: l.cfg, Plugins: launcher{l.cat}, Log: g.log, Now: g.now}
}

// loadJobs loads the configuration and selects the named jobs (all when
// none are named). The caller closes l whenever it is non-nil.
func (g *globals) loadJobs(ctx context.Context, names []string) (l *loaded, eng *runner.Engine, jobs []*config.Job, err error) {
	l, err = g.load(ctx)
	if err != nil {
		return l, nil, nil, err
	}
	if err := g.openLogFile(l); err != nil {
		return l, nil, nil, err
	}
	eng = l.engine(g)
	jobs, err = eng.SelectJobs(names)
	return l, eng, jobs, err
}

// launcher adapts the catalog to the engine's Launcher.
type launcher struct{ cat *host.Catalog }

func (la launcher) Launch(ctx context.Context, kind schema.Kind, typeName string) (runner.PluginClient, error) {
	name, err := la.cat.Provider(ctx, kind, typeName)
	if err != nil {
		return nil, err
	}
	return la.cat.Launch(ctx, name)
}

// openLogFile adds runner { log_file } to the logger: JSON lines, at info
// level (debug with --log-level debug) whatever the terminal shows, so the
// file keeps every run's history.
func (g *globals) openLogFile(l *loaded) error {
	path := l.cfg.Runner.LogFile
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	l.logFile = f
	level := slog.LevelInfo
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		level = slog.LevelDebug
	}
	g.log = slog.New(slog.NewMultiHandler(g.log.Handler(), slog.NewJSONHandler(f, &slog.HandlerOptions{Level: level})))
	return nil
}
