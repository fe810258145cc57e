package files

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
)

// staged is the host's side of an apply: tree items whose roots are
// staging directories.
type staged struct {
	items []sdk.Item
	next  int
}

func (s *staged) Next() (sdk.Item, io.Reader, error) {
	if s.next >= len(s.items) {
		return sdk.Item{}, nil, io.EOF
	}
	s.next++
	return s.items[s.next-1], strings.NewReader(""), nil
}

// listTree maps every file under root to its content ("dir/" for
// directories), for comparing trees.
func listTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.IsDir():
			out[rel+"/"] = fi.Mode().Perm().String()
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "->" + l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b) + " " + fi.Mode().Perm().String() + " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestApplyRestoresTreesIntoPlaceExactly(t *testing.T) {
	base := t.TempDir()
	live, stage := filepath.Join(base, "live"), filepath.Join(base, "stage", "live")
	// The snapshot as the host staged it.
	// (Excluded paths were not captured, so the snapshot has no cache/.)
	writeTree(t, stage, map[string]string{"a.txt": "alpha", "sub/b.txt": "beta", "link": "->a.txt"})
	old := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := os.Chtimes(filepath.Join(stage, "a.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(stage, "sub", "b.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := listTree(t, stage)
	// The live tree since: a changed file, a new one, a deleted one, and
	// an excluded cache that must stay as it is.
	writeTree(t, live, map[string]string{"a.txt": "changed", "new.txt": "new", "sub/c.txt": "gamma", "cache/x": "live cache", "link": "->a.txt"})
	inst := instance(t, map[string]cty.Value{"paths": strs(live), "exclude": strs("/cache/")})
	items := func() *staged {
		return &staged{items: []sdk.Item{{Name: live, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: stage}}}}
	}

	// A dry run says what it would do and changes nothing.
	before := listTree(t, live)
	var notes []string
	req := sdk.ApplyRequest{Instance: inst, DryRun: true, Notes: func(n string) { notes = append(notes, n) }}
	if err := (&Files{}).Apply(context.Background(), req, items()); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "would restore "+live) || !strings.Contains(notes[0], "2 deleted") {
		t.Fatalf("dry run notes %q", notes)
	}
	if got := listTree(t, live); !mapsEqual(got, before) {
		t.Fatalf("the dry run changed the tree:\n%v\n%v", got, before)
	}

	req.DryRun, notes = false, nil
	if err := (&Files{}).Apply(context.Background(), req, items()); err != nil {
		t.Fatal(err)
	}
	got := listTree(t, live)
	// The excluded cache kept its live content; everything else is as staged.
	if c := strings.SplitN(got["cache/x"], " ", 2)[0]; c != "live" {
		t.Errorf("the excluded cache was touched: %q", got["cache/x"])
	}
	delete(got, "cache/x")
	delete(got, "cache/")
	if !mapsEqual(got, want) {
		t.Fatalf("live tree after the restore:\n%v\nwant:\n%v", got, want)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("working files left beside the tree: %v", ents)
	}
}

func TestApplyBesideTheLiveData(t *testing.T) {
	base := t.TempDir()
	live, stage, dest := filepath.Join(base, "live"), filepath.Join(base, "stage", "live"), filepath.Join(base, "dest")
	writeTree(t, stage, map[string]string{"a.txt": "alpha"})
	writeTree(t, live, map[string]string{"a.txt": "live"})
	inst := instance(t, map[string]cty.Value{"paths": strs(live)})
	req := sdk.ApplyRequest{Instance: inst, Destination: dest}
	if err := (&Files{}).Apply(context.Background(), req, &staged{items: []sdk.Item{{Name: live, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: stage}}}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, live, "a.txt")); string(b) != "alpha" {
		t.Errorf("restored beside: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(live, "a.txt")); string(b) != "live" {
		t.Errorf("the live data was touched: %q", b)
	}
	// Options it does not know are refused.
	req.Options = map[string]string{"database": "x"}
	err := (&Files{}).Apply(context.Background(), req, &staged{})
	if err == nil || !strings.Contains(err.Error(), `unknown restore option "database"`) {
		t.Errorf("unknown option: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}
