// Package vpn is the built-in "vpn" hook: it brings a VPN up before a job
// (so that, say, the NAS behind it can be reached) and down after it.
//
//	hook "vpn" "home" {
//	  up    = ["/usr/local/bin/vpn-toggle", "up"]
//	  down  = ["/usr/local/bin/vpn-toggle", "down"]
//	  check = "nas.lan:2049"   # must answer on TCP after up
//	}
//
// Up runs up and then, if check is set, tries a TCP connection to check
// until one succeeds or check_timeout passes. A VPN that came up but does
// not reach what it is for is as bad as none: then Up runs down itself
// (the host will not call Down for a failed Up) and fails, naming the
// address. Down runs down.
package vpn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/command"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeName is the hook type this package provides.
const TypeName = "vpn"

const (
	defaultTimeout      = "5m"
	defaultCheckTimeout = "30s"
	// checkInterval is the pause between connection attempts: short, as a
	// VPN usually answers within seconds, but not a busy loop.
	checkInterval = 250 * time.Millisecond
	// maxDialTimeout bounds one attempt, so that a dropped SYN (no answer
	// at all) does not use up the whole check window in one try.
	maxDialTimeout = 2 * time.Second
)

// Plugin returns the vpn plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "vpn",
		Version: config.Version,
		Hooks:   map[string]sdk.Hook{TypeName: &VPN{}},
	}
}

// VPN is the vpn hook.
type VPN struct{}

var (
	_ sdk.Hook      = (*VPN)(nil)
	_ sdk.Validator = (*VPN)(nil)
)

// Schema describes the hook block.
func (*VPN) Schema() *schema.Block {
	return &schema.Block{
		Description: "Brings a VPN up before a job and down after it.",
		Attributes: []*schema.Attribute{
			{Name: "up", Type: cty.List(cty.String), Required: true, Description: "Command that brings the VPN up: the program, then its arguments."},
			{Name: "down", Type: cty.List(cty.String), Required: true, Description: "Command that brings the VPN down."},
			{Name: "check", Type: cty.String, Description: `"host:port" that must accept a TCP connection after up, e.g. "nas.lan:2049".`},
			{Name: "check_timeout", Type: cty.String, Description: `How long to wait for check to answer (default "30s").`},
			{Name: "timeout", Type: cty.String, Description: `Limit for each command (default "5m"); on expiry its process group is killed.`},
		},
	}
}

type settings struct {
	up, down     []string
	check        string
	checkTimeout time.Duration
	timeout      time.Duration
}

func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{}
	var diags schema.Diagnostics
	for _, name := range []string{"up", "down"} {
		if o.IsUnknown(name) {
			continue
		}
		list, ok, err := o.StringList(name)
		switch {
		case err != nil:
			diags = append(diags, schema.Errorf([]string{name}, "%s: %v", name, err))
		case !ok:
			diags = append(diags, schema.Errorf([]string{name}, "%s is required: the command, program first", name))
		case len(list) == 0 || strings.TrimSpace(list[0]) == "":
			diags = append(diags, schema.Errorf([]string{name}, "%s must name a program: a list with the program first, then its arguments", name))
		case name == "up":
			s.up = list
		default:
			s.down = list
		}
	}
	if check, ok := o.String("check"); ok {
		if err := checkAddress(check); err != nil {
			diags = append(diags, schema.Errorf([]string{"check"}, "check: %v", err))
		}
		s.check = check
	}
	for _, d := range []struct {
		name, def string
		dst       *time.Duration
	}{{"check_timeout", defaultCheckTimeout, &s.checkTimeout}, {"timeout", defaultTimeout, &s.timeout}} {
		if o.IsUnknown(d.name) {
			continue
		}
		v, err := o.Duration(d.name, d.def)
		if err != nil {
			diags = append(diags, schema.Errorf([]string{d.name}, "%s: %v", d.name, err))
		}
		*d.dst = v
	}
	return s, diags
}

// checkAddress accepts "host:port" with a numeric port; the host may be a
// name, resolved only when the check runs.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q must be host:port (e.g. nas.lan:2049): %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be a number 1-65535", addr)
	}
	return nil
}

// Validate checks the configuration without running or connecting.
func (*VPN) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decode(v)
	return diags
}

func (*VPN) settings(req sdk.HookRequest) (*settings, string, error) {
	label := config.Label(schema.KindHook, req.Instance)
	s, diags := decode(req.Instance.Config)
	if diags.HasErrors() {
		return nil, label, fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	return s, label, nil
}

// Up runs up, then waits for check to answer.
func (v *VPN) Up(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	s, label, err := v.settings(req)
	if err != nil {
		return nil, err
	}
	// A dry run brings the VPN up too: reaching the target or the source
	// (a dry run reads both) needs it, and it changes no data.
	var notes []string
	if req.DryRun {
		notes = append(notes, "dry run: the VPN comes up all the same, as reading needs it")
	}
	res, err := s.run(ctx, req, "up", s.up)
	if err != nil {
		// Whether a failed up left anything half up is the command's
		// business; the host does not call Down after a failed Up.
		return nil, fmt.Errorf("%s: up: %w", label, err)
	}
	notes = append(notes, fmt.Sprintf("ran up: %s (%s)", command.Format(s.up), res.Elapsed.Round(time.Millisecond)))
	if s.check == "" {
		return notes, nil
	}
	waited, err := waitForTCP(ctx, s.check, s.checkTimeout)
	if err == nil {
		return append(notes, fmt.Sprintf("%s answered after %s", s.check, waited.Round(time.Millisecond))), nil
	}
	checkErr := fmt.Errorf("%s: check: %s did not accept a TCP connection within %s after up: %w", label, s.check, s.checkTimeout, err)
	if ctx.Err() != nil {
		checkErr = fmt.Errorf("%s: check: stopped while waiting for %s: %w", label, s.check, context.Cause(ctx))
	}
	// The VPN is up but useless: take it down again. This must happen
	// even when ctx was cancelled (the runner is being stopped), so the
	// command gets its own timeout instead of ctx's cancellation.
	if _, downErr := s.run(context.WithoutCancel(ctx), req, "down", s.down); downErr != nil {
		return notes, errors.Join(checkErr, fmt.Errorf("%s: down after the failed check: %w", label, downErr))
	}
	return notes, fmt.Errorf("%w (down has run)", checkErr)
}

// Down runs down.
func (v *VPN) Down(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	s, label, err := v.settings(req)
	if err != nil {
		return nil, err
	}
	res, err := s.run(ctx, req, "down", s.down)
	if err != nil {
		return nil, fmt.Errorf("%s: down: %w", label, err)
	}
	return []string{fmt.Sprintf("ran down: %s (%s)", command.Format(s.down), res.Elapsed.Round(time.Millisecond))}, nil
}

func (s *settings) run(ctx context.Context, req sdk.HookRequest, phase string, argv []string) (command.Result, error) {
	return command.Run(ctx, command.Spec{
		Argv:    argv,
		Env:     command.Environ(req.Env, map[string]string{"RUNNER_HOOK_PHASE": phase}),
		Timeout: s.timeout,
	})
}

// waitForTCP tries to connect to addr until it succeeds, timeout passes or
// ctx is done. It returns how long it waited, or the last connection
// error.
func waitForTCP(ctx context.Context, addr string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		dialTimeout, cut := maxDialTimeout, false
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < dialTimeout {
			dialTimeout, cut = time.Until(dl), true
		}
		d := net.Dialer{Timeout: dialTimeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return time.Since(start), nil
		}
		// Keep the error of a real attempt rather than the timeout of one
		// that the check's deadline cut short, which says nothing about
		// addr. The dialer's own timer may fire before the context's, so
		// ctx.Err() alone does not tell.
		var ne net.Error
		cutShort := ctx.Err() != nil || (cut && errors.As(err, &ne) && ne.Timeout())
		if lastErr == nil || !cutShort {
			lastErr = err
		}
		t := time.NewTimer(checkInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), fmt.Errorf("last attempt: %w", lastErr)
		case <-t.C:
		}
	}
}
