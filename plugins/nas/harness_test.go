package nas_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/nas"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

// TestThroughTheHarness uses the object verbs over gRPC, as the host does
// for a target without a local root.
func TestThroughTheHarness(t *testing.T) {
	root := t.TempDir()
	c := sdktest.Start(t, nas.Plugin())
	ctx := context.Background()
	tg, err := c.Target(ctx, nas.TypeName)
	if err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{TypeName: nas.TypeName, Address: "target.nas.home",
		Config: config.MustBuild(tg.Schema(), map[string]cty.Value{"path": cty.StringVal(root)})}

	s, err := tg.Prepare(ctx, inst, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.LocalRoot() != root {
		t.Fatalf("LocalRoot over the wire = %q", s.LocalRoot())
	}
	body := strings.Repeat("0123456789", 100_000) // more than one message
	if err := s.Put(ctx, "data/00/obj", strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "data/00/obj", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || string(got) != "5678901234" {
		t.Fatalf("ranged get = %q, %v", got, err)
	}
	var names []string
	if err := s.List(ctx, "data/", func(oi sdk.ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	}); err != nil || len(names) != 1 || names[0] != "data/00/obj" {
		t.Fatalf("list = %q, %v", names, err)
	}
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("ErrNotFound does not survive the wire: %v", err)
	}
	if err := s.Delete(ctx, "data/00/obj"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}

	_, err = tg.Prepare(ctx, sdk.Instance{TypeName: nas.TypeName, Address: "target.nas.home",
		Config: config.MustBuild(tg.Schema(), map[string]cty.Value{"path": cty.StringVal("/nonexistent/repo")})}, true)
	if err == nil || !strings.Contains(err.Error(), `target nas "home": path /nonexistent/repo does not exist`) {
		t.Fatalf("Prepare error over the wire: %v", err)
	}
}
