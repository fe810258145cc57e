// Package exec is the built-in "exec" hook: it runs the operator's commands
// around a job, such as stopping a service before a backup and starting
// it again after.
//
//	hook "exec" "maintenance" {
//	  before     = ["/usr/sbin/service", "php-fpm", "stop"]
//	  always     = ["/usr/sbin/service", "php-fpm", "start"]
//	  on_failure = ["/usr/local/bin/page-oncall", "backup failed"]
//	  timeout    = "2m"
//	}
//
// Up runs before. Down runs after when the job succeeded
// (RUNNER_STATUS=success) or on_failure when it failed
// (RUNNER_STATUS=failure), then always in every case, even if the first
// command failed. Commands run without a shell, with the runner's
// environment plus environment plus the job's RUNNER_* variables, and
// RUNNER_HOOK_PHASE set to before, after, on_failure or always.
package exec

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/command"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeName is the hook type this package provides.
const TypeName = "exec"

// defaultTimeout bounds each command when the block sets no timeout: long
// enough for a service to stop, short enough that a hung command does not
// hold the job's lock for the night.
const defaultTimeout = "5m"

// Plugin returns the exec plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "exec",
		Version: config.Version,
		Hooks:   map[string]sdk.Hook{TypeName: &Exec{}},
	}
}

// Exec is the exec hook.
type Exec struct{}

var (
	_ sdk.Hook      = (*Exec)(nil)
	_ sdk.Validator = (*Exec)(nil)
)

// phases in the order Down considers them; before is Up's.
var argvAttrs = []string{"before", "after", "on_failure", "always"}

// Schema describes the hook block.
func (*Exec) Schema() *schema.Block {
	argv := func(name, desc string) *schema.Attribute {
		return &schema.Attribute{Name: name, Type: cty.List(cty.String), Description: desc}
	}
	return &schema.Block{
		Description: "Runs commands before and after a job.",
		Attributes: []*schema.Attribute{
			argv("before", "Command run before the job (Up): the program, then its arguments."),
			argv("after", "Command run after the job when it succeeded."),
			argv("on_failure", "Command run after the job when it failed."),
			argv("always", "Command run after the job in every case, after after or on_failure."),
			{Name: "timeout", Type: cty.String, Description: `Limit for each command, e.g. "30s" (default "5m"); on expiry the command's whole process group is killed.`},
			{Name: "environment", Type: cty.Map(cty.String), Description: "Variables added to the runner's environment for the commands."},
			{Name: "dir", Type: cty.String, Description: "Absolute working directory of the commands."},
		},
	}
}

// settings is a decoded configuration.
type settings struct {
	argv    map[string][]string // by phase; absent when not set
	timeout time.Duration
	env     map[string]string
	dir     string
}

// decode reads and checks a configuration. Values that are not known yet
// (during validation) are skipped.
func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{argv: map[string][]string{}}
	var diags schema.Diagnostics
	for _, name := range argvAttrs {
		list, ok, err := o.StringList(name)
		switch {
		case err != nil:
			diags = append(diags, schema.Errorf([]string{name}, "%s: %v", name, err))
		case !ok:
		case len(list) == 0:
			diags = append(diags, schema.Errorf([]string{name}, "%s must name a program: a list with the program first, then its arguments", name))
		case strings.TrimSpace(list[0]) == "":
			diags = append(diags, schema.Errorf([]string{name}, "%s: the program (first element) is empty", name))
		default:
			s.argv[name] = list
		}
	}
	if !o.IsUnknown("timeout") {
		d, err := o.Duration("timeout", defaultTimeout)
		if err != nil {
			diags = append(diags, schema.Errorf([]string{"timeout"}, "timeout: %v", err))
		}
		s.timeout = d
	}
	env, _, err := o.StringMap("environment")
	if err != nil {
		diags = append(diags, schema.Errorf([]string{"environment"}, "environment: %v", err))
	}
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			diags = append(diags, schema.Errorf([]string{"environment", k}, "environment: %q is not a valid variable name", k))
		}
	}
	s.env = env
	if dir, ok := o.String("dir"); ok {
		if !filepath.IsAbs(dir) {
			diags = append(diags, schema.Errorf([]string{"dir"}, "dir must be an absolute path, not %q", dir))
		}
		s.dir = dir
	}
	return s, diags
}

// Validate checks the configuration without running anything.
func (*Exec) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	s, diags := decode(v)
	o := config.New(v)
	anyUnknown := false
	for _, name := range argvAttrs {
		anyUnknown = anyUnknown || o.IsUnknown(name)
	}
	if len(s.argv) == 0 && !anyUnknown && !diags.HasErrors() {
		diags = append(diags, schema.Diagnostic{
			Severity: schema.Warning,
			Summary:  "this exec hook runs nothing: set before, after, on_failure or always",
		})
	}
	return diags
}

// Up runs before.
func (e *Exec) Up(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	s, err := e.settings(req)
	if err != nil {
		return nil, err
	}
	return s.run(ctx, req, []string{"before"})
}

// Down runs after or on_failure according to RUNNER_STATUS, then always.
func (e *Exec) Down(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	s, err := e.settings(req)
	if err != nil {
		return nil, err
	}
	var phases []string
	var notes []string
	switch status := req.Env["RUNNER_STATUS"]; status {
	case "success":
		phases = append(phases, "after")
	case "failure":
		phases = append(phases, "on_failure")
	default:
		if s.argv["after"] != nil || s.argv["on_failure"] != nil {
			notes = append(notes, fmt.Sprintf("RUNNER_STATUS is %q, neither success nor failure: after and on_failure do not run", status))
		}
	}
	phases = append(phases, "always")
	more, err := s.run(ctx, req, phases)
	return append(notes, more...), err
}

func (*Exec) settings(req sdk.HookRequest) (*settings, error) {
	s, diags := decode(req.Instance.Config)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", config.Label(schema.KindHook, req.Instance), diags[0].Summary)
	}
	return s, nil
}

// run runs the commands of the phases in order. A failing command does
// not stop the next phase: always must run even when after failed.
func (s *settings) run(ctx context.Context, req sdk.HookRequest, phases []string) ([]string, error) {
	label := config.Label(schema.KindHook, req.Instance)
	var notes []string
	var errs []error
	for _, phase := range phases {
		argv := s.argv[phase]
		if argv == nil {
			continue
		}
		if req.DryRun {
			notes = append(notes, fmt.Sprintf("would run %s: %s", phase, command.Format(argv)))
			continue
		}
		res, err := command.Run(ctx, command.Spec{
			Argv:    argv,
			Dir:     s.dir,
			Env:     command.Environ(s.env, req.Env, map[string]string{"RUNNER_HOOK_PHASE": phase}),
			Timeout: s.timeout,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", label, phase, err))
			continue
		}
		notes = append(notes, fmt.Sprintf("ran %s: %s (%s)", phase, command.Format(argv), res.Elapsed.Round(time.Millisecond)))
	}
	return notes, errors.Join(errs...)
}
