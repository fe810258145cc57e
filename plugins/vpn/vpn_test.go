package vpn

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

// recorder returns an argv that appends word to log, as a stand-in for a
// VPN toggle script.
func recorder(log, word string) cty.Value {
	return cty.ListVal([]cty.Value{cty.StringVal("/bin/sh"), cty.StringVal("-c"), cty.StringVal("echo " + word + " >> '" + log + "'")})
}

func request(t *testing.T, attrs map[string]cty.Value) sdk.HookRequest {
	t.Helper()
	v, err := config.Build((&VPN{}).Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.HookRequest{
		Instance: sdk.Instance{TypeName: TypeName, Address: "hook.vpn.home", Config: v},
		Env:      map[string]string{"RUNNER_JOB": "site"},
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// listen starts a TCP listener on loopback that accepts and closes
// connections until the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup below
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestSchemaIsWellFormed(t *testing.T) {
	if err := (&VPN{}).Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	if p := Plugin(); p.Name != "vpn" || p.Hooks[TypeName] == nil {
		t.Fatalf("Plugin() = %+v", p)
	}
}

func TestUpRunsUpAndWaitsForTheCheck(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	ln := listen(t)
	req := request(t, map[string]cty.Value{
		"up":    recorder(log, "up"),
		"down":  recorder(log, "down"),
		"check": cty.StringVal(ln.Addr().String()),
	})
	notes, err := (&VPN{}).Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "up" {
		t.Fatalf("log = %q, want up", got)
	}
	if len(notes) != 2 || !strings.Contains(notes[1], ln.Addr().String()+" answered") {
		t.Fatalf("notes = %q", notes)
	}
	if _, err := (&VPN{}).Down(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "up\ndown" {
		t.Fatalf("log = %q, want up, down", got)
	}
}

// TestCheckWaitsForAServiceThatComesUpLater opens the listener only after
// the check has started, as a VPN takes a moment to route.
func TestCheckWaitsForAServiceThatComesUpLater(t *testing.T) {
	addr := closedAddr(t)
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"up":            recorder(log, "up"),
		"down":          recorder(log, "down"),
		"check":         cty.StringVal(addr),
		"check_timeout": cty.StringVal("10s"),
	})
	var ln net.Listener
	var mu sync.Mutex
	timer := time.AfterFunc(600*time.Millisecond, func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // the port was taken meanwhile; Up will fail and say so
		}
		mu.Lock()
		ln = l
		mu.Unlock()
	})
	t.Cleanup(func() {
		timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		if ln != nil {
			_ = ln.Close()
		}
	})
	if _, err := (&VPN{}).Up(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "up" {
		t.Fatalf("log = %q", got)
	}
}

func TestFailedCheckRunsDownAndNamesTheAddress(t *testing.T) {
	addr := closedAddr(t)
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"up":            recorder(log, "up"),
		"down":          recorder(log, "down"),
		"check":         cty.StringVal(addr),
		"check_timeout": cty.StringVal("1s"),
	})
	start := time.Now()
	_, err := (&VPN{}).Up(context.Background(), req)
	if err == nil {
		t.Fatal("Up succeeded although nothing answers")
	}
	for _, want := range []string{`hook vpn "home": check: ` + addr, "within 1s", "connection refused", "down has run"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("check took %v with a 1s timeout", el)
	}
	if got := readLog(t, log); got != "up\ndown" {
		t.Fatalf("log = %q, want up then down", got)
	}
}

func TestFailedUpDoesNotCheckOrRunDown(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"up":    cty.ListVal([]cty.Value{cty.StringVal("/bin/sh"), cty.StringVal("-c"), cty.StringVal("echo no route >&2; exit 1")}),
		"down":  recorder(log, "down"),
		"check": cty.StringVal(closedAddr(t)),
	})
	_, err := (&VPN{}).Up(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "up: command") || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("err = %v", err)
	}
	if got := readLog(t, log); got != "" {
		t.Fatalf("down ran after a failed up: %q", got)
	}
}

// A dry run reads the target and the source, which the VPN is there to
// reach: it comes up and down as in a real run.
func TestDryRunBringsTheVPNUpAndDown(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	req := request(t, map[string]cty.Value{
		"up":   recorder(log, "up"),
		"down": recorder(log, "down"),
	})
	req.DryRun = true
	up, err := (&VPN{}).Up(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&VPN{}).Down(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, log); got != "up\ndown" {
		t.Fatalf("dry run ran %q, want up down", got)
	}
	if !strings.Contains(strings.Join(up, "\n"), "dry run: the VPN comes up all the same") {
		t.Errorf("notes %q do not say why a dry run brings the VPN up", up)
	}
}

func TestValidate(t *testing.T) {
	ok := func() map[string]cty.Value {
		return map[string]cty.Value{"up": recorder("/tmp/x", "up"), "down": recorder("/tmp/x", "down")}
	}
	with := func(k string, v cty.Value) map[string]cty.Value {
		m := ok()
		if v == cty.NilVal {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		attrs    map[string]cty.Value
		wantPath string
		wantText string
	}{
		{"valid", with("check", cty.StringVal("nas.lan:2049")), "", ""},
		{"missing down", with("down", cty.NilVal), "down", "required"},
		{"empty up", with("up", cty.ListValEmpty(cty.String)), "up", "must name a program"},
		{"check without port", with("check", cty.StringVal("nas.lan")), "check", "host:port"},
		{"check with a bad port", with("check", cty.StringVal("nas.lan:nfs")), "check", "port must be a number"},
		{"check without host", with("check", cty.StringVal(":2049")), "check", "no host"},
		{"bad check_timeout", with("check_timeout", cty.StringVal("soon")), "check_timeout", "invalid duration"},
		{"bad timeout", with("timeout", cty.StringVal("1y")), "timeout", "months or years"},
		{"unknown up is not judged yet", with("up", cty.UnknownVal(cty.List(cty.String))), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := (&VPN{}).Validate(context.Background(), config.MustBuild((&VPN{}).Schema(), tt.attrs))
			if tt.wantPath == "" {
				if len(diags) != 0 {
					t.Fatalf("unexpected diagnostics %+v", diags)
				}
				return
			}
			if !diags.HasErrors() || len(diags[0].Path) == 0 || diags[0].Path[0] != tt.wantPath || !strings.Contains(diags[0].Summary, tt.wantText) {
				t.Fatalf("diagnostics %+v, want an error at %s containing %q", diags, tt.wantPath, tt.wantText)
			}
		})
	}
}
