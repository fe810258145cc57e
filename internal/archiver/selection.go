package archiver

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// selection is a trie of chosen relative paths: TreeSpec.Paths for a
// backup, RestoreOptions.Include for a restore. A node with all set selects
// everything below it; other nodes are the directories on the way to a
// chosen path, which are captured (or restored) with only the chosen
// children.
type selection struct {
	all      bool
	children map[string]*selection
	// used marks include paths a restore met, to report those it did not.
	used bool
}

// selectAll is the selection of everything (shared, never modified).
var selectAll = &selection{all: true}

// newSelection builds the trie. Paths are relative to the item root; a
// leading "/" is accepted and means the same (operators type include paths
// as they see them in a listing of the snapshot). An empty list, "", "."
// or "/" selects everything. Paths that leave the root ("..") are errors.
func newSelection(paths []string) (*selection, error) {
	if len(paths) == 0 {
		return selectAll, nil
	}
	root := &selection{}
	for _, p := range paths {
		c, err := cleanRel(p)
		if err != nil {
			return nil, err
		}
		if c == "" {
			return selectAll, nil
		}
		n := root
		for _, part := range strings.Split(c, "/") {
			if n.all {
				break // a parent is already selected whole
			}
			child := n.children[part]
			if child == nil {
				if n.children == nil {
					n.children = make(map[string]*selection)
				}
				child = &selection{}
				n.children[part] = child
			}
			n = child
		}
		n.all, n.children = true, nil
	}
	return root, nil
}

func cleanRel(p string) (string, error) {
	c := path.Clean("/" + p)
	if strings.Contains(p, "\x00") {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	// Clean of a rooted path drops "..", so compare to catch escapes.
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("path %q leaves the root", p)
		}
	}
	return strings.TrimPrefix(c, "/"), nil
}

// child returns the selection for the entry name, or nil if it is not
// selected.
func (s *selection) child(name string) *selection {
	if s.all {
		return s
	}
	return s.children[name]
}

// names returns the explicitly selected children, sorted.
func (s *selection) names() []string {
	out := make([]string, 0, len(s.children))
	for name := range s.children {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// unused returns the chosen paths that were never met (not marked used),
// for a restore to report includes that match nothing.
func (s *selection) unused(prefix string, out []string) []string {
	if s.all {
		if !s.used {
			out = append(out, prefix)
		}
		return out
	}
	for _, name := range s.names() {
		out = s.children[name].unused(path.Join(prefix, name), out)
	}
	return out
}
