package vpn_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
	"github.com/backup-runner/runner/plugins/vpn"
)

// TestThroughTheHarness brings the VPN up and down over gRPC, with a check
// against a real listener.
func TestThroughTheHarness(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	c := sdktest.Start(t, vpn.Plugin())
	ctx := context.Background()
	h, err := c.Hook(ctx, vpn.TypeName)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "log")
	sh := func(word string) cty.Value {
		return cty.ListVal([]cty.Value{cty.StringVal("/bin/sh"), cty.StringVal("-c"), cty.StringVal("echo " + word + " >> " + log)})
	}
	req := sdk.HookRequest{Instance: sdk.Instance{
		TypeName: vpn.TypeName, Address: "hook.vpn.home",
		Config: config.MustBuild(h.Schema(), map[string]cty.Value{
			"up": sh("up"), "down": sh("down"), "check": cty.StringVal(ln.Addr().String()),
		}),
	}}
	if _, err := h.Up(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Down(ctx, req); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "up\ndown" {
		t.Fatalf("ran %q", got)
	}
}
