package files_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/files"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

type trees struct {
	items []sdk.Item
	meta  map[string]string
}

func (w *trees) Tree(it sdk.Item) error { w.items = append(w.items, it); return nil }
func (w *trees) Stream(sdk.Item) (sdk.StreamWriter, error) {
	return nil, errors.New("unexpected stream")
}
func (w *trees) Done(r sdk.CaptureResult) error { w.meta = r.Meta; return nil }

// TestThroughTheHarness plans and captures over gRPC.
func TestThroughTheHarness(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{"a.txt": "hello", "skip.tmp": "xx", "sub/b.txt": "world!"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := sdktest.Start(t, files.Plugin())
	ctx := context.Background()
	src, err := c.Source(ctx, files.TypeName)
	if err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{TypeName: files.TypeName, Address: "source.files.data", Config: config.MustBuild(src.Schema(), map[string]cty.Value{
		"paths":   cty.ListVal([]cty.Value{cty.StringVal(root)}),
		"exclude": cty.ListVal([]cty.Value{cty.StringVal("*.tmp")}),
	})}
	plan, err := src.PlanCapture(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 1 || plan.Items[0].Files != 2 || plan.Items[0].Bytes != 11 {
		t.Fatalf("plan over the wire: %+v", plan.Items)
	}
	var w trees
	if err := src.Capture(ctx, inst, &w); err != nil {
		t.Fatal(err)
	}
	if len(w.items) != 1 || w.items[0].Tree == nil || w.items[0].Tree.Root != root || !slices.Equal(w.items[0].Tree.Excludes, []string{"*.tmp"}) {
		t.Fatalf("items over the wire: %+v", w.items)
	}
	if w.meta["paths"] != `["`+root+`"]` {
		t.Fatalf("meta over the wire: %v", w.meta)
	}
}
