//go:build linux

package archiver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// walkOrder must order directories exactly as the walker enters them:
// depth first, subdirectories by bytewise name. Names with bytes below
// and above '/' are where a plain string comparison would go wrong.
func TestWalkOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "-", ".", "0", "a-", "a.b", "z", "\x01", "é"}
	type dir struct {
		rel  string
		subs []*dir
	}
	var build func(rel string, depth int) *dir
	build = func(rel string, depth int) *dir {
		d := &dir{rel: rel}
		if depth == 0 {
			return d
		}
		names := map[string]bool{}
		for range rng.IntN(4) {
			names[alphabet[rng.IntN(len(alphabet))]+alphabet[rng.IntN(len(alphabet))]] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		slices.Sort(sorted)
		for _, n := range sorted {
			d.subs = append(d.subs, build(joinRel(rel, n), depth-1))
		}
		return d
	}
	for round := range 50 {
		root := build("", 5)
		var walked []string
		var walk func(d *dir)
		walk = func(d *dir) {
			walked = append(walked, d.rel)
			for _, s := range d.subs {
				walk(s)
			}
		}
		walk(root)
		shuffled := slices.Clone(walked)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		slices.SortFunc(shuffled, walkOrder)
		if !slices.Equal(shuffled, walked) {
			t.Fatalf("round %d: walkOrder sorts\n%q\nthe walker enters\n%q", round, shuffled, walked)
		}
	}
}

// A directory with more entries than a listing stats ahead: the walker
// stats the rest, and subdirectories past the limit are walked too.
func TestLargeDirectoryPastTheListingLimit(t *testing.T) {
	r := newTestRepo(t, false)
	root := filepath.Join(t.TempDir(), "big")
	must(t, os.MkdirAll(root, 0o755))
	n := listStatMax + 100
	wantDirs := uint64(1) // the root
	for i := range n {
		name := filepath.Join(root, fmt.Sprintf("e%05d", i))
		if i%500 == 0 || i == n-1 {
			writeFile(t, filepath.Join(name, "inside"), textBytes(uint64(i), 100), 0o644)
			wantDirs++
			continue
		}
		writeFile(t, name, nil, 0o644)
	}
	setTimesDeepestFirst(t, root)
	it, a := backup(t, r, Options{}, TreeSpec{Root: root})
	st := a.Stats()
	if st.Errors != 0 || st.Dirs != wantDirs || st.Files != uint64(n) {
		t.Fatalf("stats %+v, want %d files and %d dirs", st, n, wantDirs)
	}
	dst := t.TempDir()
	_, err := Restore(context.Background(), r.Repository, it, dst, RestoreOptions{Owners: isRoot()})
	must(t, err)
	compareTrees(t, root, filepath.Join(dst, "big"))
}
