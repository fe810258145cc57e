package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// commandSource is source "command": the standard output of a command,
// captured as one stream item.
//
//	source "command" "etc" {
//	  command = ["tar", "-C", "/etc", "-cf", "-", "."]
//	}
type commandSource struct{}

var (
	_ sdk.Source    = commandSource{}
	_ sdk.Validator = commandSource{}
)

func (commandSource) Schema() *schema.Block {
	return &schema.Block{
		Description: "Captures the standard output of a command as one stream item.",
		Attributes: []*schema.Attribute{
			{Name: "command", Type: cty.List(cty.String), Required: true,
				Description: "The program and its arguments. No shell is involved."},
			{Name: "dir", Type: cty.String,
				Description: "Absolute working directory of the command (default: the plugin's)."},
			{Name: "env", Type: cty.Map(cty.String),
				Description: "Environment variables added to the command's environment."},
			{Name: "item", Type: cty.String,
				Description: `Name of the stream item in the snapshot (default "stdout").`},
		},
	}
}

// commandConfig is the decoded configuration of one source "command" block.
type commandConfig struct {
	argv []string
	dir  string
	env  []string // KEY=VALUE, sorted
	item string
}

// decode reads a configuration the host has already checked against the
// schema (so the types are right); values may still be unknown during
// validation, and are then skipped by Validate.
func decode(cfg cty.Value) commandConfig {
	c := commandConfig{item: "stdout"}
	if v := cfg.GetAttr("command"); v.IsWhollyKnown() && !v.IsNull() {
		for _, a := range v.AsValueSlice() {
			if !a.IsNull() {
				c.argv = append(c.argv, a.AsString())
			}
		}
	}
	if v := cfg.GetAttr("dir"); v.IsKnown() && !v.IsNull() {
		c.dir = v.AsString()
	}
	if v := cfg.GetAttr("env"); v.IsWhollyKnown() && !v.IsNull() {
		for k, val := range v.AsValueMap() {
			if !val.IsNull() {
				c.env = append(c.env, k+"="+val.AsString())
			}
		}
		sort.Strings(c.env)
	}
	if v := cfg.GetAttr("item"); v.IsKnown() && !v.IsNull() {
		c.item = v.AsString()
	}
	return c
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (commandSource) Validate(_ context.Context, cfg cty.Value) schema.Diagnostics {
	var diags schema.Diagnostics
	if v := cfg.GetAttr("command"); v.IsWhollyKnown() && !v.IsNull() {
		args := v.AsValueSlice()
		switch {
		case len(args) == 0:
			diags = append(diags, schema.Diagnostic{Severity: schema.Error, Path: []string{"command"},
				Summary: "command is empty", Detail: `Give the program and its arguments, e.g. ["pg_dumpall", "--clean"].`})
		case args[0].IsNull() || strings.TrimSpace(args[0].AsString()) == "":
			diags = append(diags, schema.Errorf([]string{"command"}, "the program name (first element) is empty"))
		}
	}
	if v := cfg.GetAttr("dir"); v.IsKnown() && !v.IsNull() && !filepath.IsAbs(v.AsString()) {
		diags = append(diags, schema.Errorf([]string{"dir"}, "dir must be an absolute path, got %q", v.AsString()))
	}
	if v := cfg.GetAttr("env"); v.IsWhollyKnown() && !v.IsNull() {
		keys := make([]string, 0, v.LengthInt())
		for k := range v.AsValueMap() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !envNameRe.MatchString(k) {
				diags = append(diags, schema.Errorf([]string{"env"}, "%q is not a valid environment variable name", k))
			}
		}
	}
	if v := cfg.GetAttr("item"); v.IsKnown() && !v.IsNull() {
		if s := v.AsString(); s == "" || strings.ContainsAny(s, "/\x00") {
			diags = append(diags, schema.Errorf([]string{"item"}, "item must be a non-empty name without slashes"))
		}
	}
	return diags
}

// PlanCapture says what would run, without running it. It does check that
// the program can be found, which is read-only and saves a failed night.
func (commandSource) PlanCapture(_ context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	c := decode(inst.Config)
	if len(c.argv) == 0 {
		return nil, errors.New("no command")
	}
	if !strings.Contains(c.argv[0], "/") {
		if _, err := exec.LookPath(c.argv[0]); err != nil {
			return nil, fmt.Errorf("program %q not found in PATH", c.argv[0])
		}
	}
	where := ""
	if c.dir != "" {
		where = " in " + c.dir
	}
	return &sdk.CapturePlan{
		Items: []sdk.ItemEstimate{{
			Name:   c.item,
			Kind:   sdk.ItemStream,
			Bytes:  -1, // unknown until it runs
			Detail: "standard output of " + shellQuote(c.argv),
		}},
		Notes: []string{"would run " + shellQuote(c.argv) + where},
	}, nil
}

// waitDelay bounds how long Capture waits for the command's output to end
// after the command exited or was killed (a child it left behind may hold
// the pipe open).
const waitDelay = 5 * time.Second

// Capture runs the command and streams its standard output to the host.
// A command that fails fails the capture, with the end of its standard
// error in the message.
func (commandSource) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	c := decode(inst.Config)
	if len(c.argv) == 0 {
		return errors.New("no command")
	}
	display := shellQuote(c.argv)
	sw, err := w.Stream(sdk.Item{Name: c.item, Meta: map[string]string{"command": display}})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = waitDelay
	cmd.Stdout = sw
	stderr := &tail{max: 4 << 10}
	cmd.Stderr = stderr

	start := time.Now()
	sdk.Logger().Info("running command", "address", inst.Address, "command", display)
	if err := cmd.Run(); err != nil {
		if msg := stderr.String(); msg != "" {
			err = fmt.Errorf("%s: %w: %s", display, err, msg)
		} else {
			err = fmt.Errorf("%s: %w", display, err)
		}
		_ = sw.CloseWithError(err)
		return err
	}
	if err := sw.Close(); err != nil {
		return err
	}
	var warnings []string
	if msg := stderr.String(); msg != "" {
		warnings = append(warnings, display+" wrote to standard error: "+msg)
	}
	return w.Done(sdk.CaptureResult{
		Meta: map[string]string{
			"command":  display,
			"duration": time.Since(start).Round(time.Millisecond).String(),
		},
		Warnings: warnings,
	})
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// shellQuote renders argv the way one would type it in a shell, for plans
// and messages.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if plainArg.MatchString(a) {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
