package nas_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/nas"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
	"github.com/backup-runner/runner/plugins/sdk/targettest"
)

// repoDir makes an empty repository directory and checks, after the
// session's release, that nothing was left beside it and no temporary
// file in it. Over RPC a failed Put is cleaned up by the plugin after the
// host already has its error, so the check waits a little for that.
func repoDir(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "repo")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("something was written beside the repository: %v", entries)
		}
		var left []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			left = left[:0]
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), ".runner-tmp-") {
					left = append(left, p)
				}
				return nil
			})
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			t.Errorf("temporary files left behind: %q", left)
		}
	})
	return root
}

func instanceFor(t *testing.T, schemaOf sdk.Schemer, root string) sdk.Instance {
	t.Helper()
	return sdk.Instance{TypeName: nas.TypeName, Address: "target.nas.home",
		Config: config.MustBuild(schemaOf.Schema(), map[string]cty.Value{"path": cty.StringVal(root)})}
}

// TestConformance runs the target conformance suite on sessions used
// in-process, as the host's direct (local root) path uses the files.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) sdk.Session {
		s, err := (&nas.NAS{}).Prepare(t.Context(), instanceFor(t, &nas.NAS{}, repoDir(t)), false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceOverRPC runs the suite through the gRPC object verbs, as
// the host uses a target without a local root.
func TestConformanceOverRPC(t *testing.T) {
	c := sdktest.Start(t, nas.Plugin())
	tg, err := c.Target(t.Context(), nas.TypeName)
	if err != nil {
		t.Fatal(err)
	}
	targettest.Run(t, func(t *testing.T) sdk.Session {
		s, err := tg.Prepare(t.Context(), instanceFor(t, tg, repoDir(t)), false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

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
