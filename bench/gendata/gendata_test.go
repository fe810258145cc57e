package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// manifest describes every entry under dir: type, mode, size, modification
// time, symlink target and content hash.
func manifest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.ModTime().UnixNano())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %x", len(b), sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestDeterministicMutateRevert(t *testing.T) {
	for _, kind := range []string{"site", "small"} {
		t.Run(kind, func(t *testing.T) {
			a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			if err := buildDataset(kind, 5, true).generate(a, 2); err != nil {
				t.Fatal(err)
			}
			if err := buildDataset(kind, 5, true).generate(b, 1); err != nil {
				t.Fatal(err)
			}
			ma, mb := manifest(t, a), manifest(t, b)
			if ma != mb {
				t.Fatal("two generations with the same seed differ")
			}
			ds := buildDataset(kind, 5, true)
			st, err := ds.mutate(a)
			if err != nil {
				t.Fatal(err)
			}
			if st.modified == 0 || st.added == 0 || st.deleted == 0 {
				t.Fatalf("mutate changed too little: %+v", st)
			}
			if manifest(t, a) == ma {
				t.Fatal("mutate changed nothing")
			}
			if err := ds.revert(a); err != nil {
				t.Fatal(err)
			}
			if got := manifest(t, a); got != ma {
				t.Fatal("revert did not restore the generated state")
			}
			if manifest(t, b) == manifest(t, func() string {
				c := filepath.Join(t.TempDir(), "c")
				if err := buildDataset(kind, 6, true).generate(c, 2); err != nil {
					t.Fatal(err)
				}
				return c
			}()) {
				t.Fatal("another seed gives the same dataset")
			}
		})
	}
}
