package builtin

import (
	"sort"
	"testing"

	"github.com/backup-runner/runner/plugins/sdk"
)

func TestAllIsSortedAndComplete(t *testing.T) {
	var names []string
	for _, p := range All() {
		names = append(names, p.Name)
		if p.Version != Version {
			t.Errorf("%s reports version %q, want %q", p.Name, p.Version, Version)
		}
	}
	want := []string{"exec", "files", "nas", "vpn"}
	if len(names) != len(want) || !sort.StringsAreSorted(names) {
		t.Fatalf("All() names = %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("All() names = %q, want %q", names, want)
		}
	}
}

// TestEverySchemaIsWellFormed checks what the host will check when it
// loads the plugins: valid schemas, and each plugin named after the one
// block type it provides.
func TestEverySchemaIsWellFormed(t *testing.T) {
	for _, p := range All() {
		types := 0
		check := func(kind, name string, s sdk.Schemer) {
			types++
			if name != p.Name {
				t.Errorf("plugin %s provides %s %q", p.Name, kind, name)
			}
			if err := s.Schema().Validate(); err != nil {
				t.Errorf("%s %s: %v", kind, name, err)
			}
		}
		for n, s := range p.Sources {
			check("source", n, s)
		}
		for n, s := range p.Targets {
			check("target", n, s)
		}
		for n, s := range p.Hooks {
			check("hook", n, s)
		}
		for n, s := range p.Notifiers {
			check("notify", n, s)
		}
		if types != 1 {
			t.Errorf("plugin %s provides %d block types, want 1", p.Name, types)
		}
	}
}

func TestLookup(t *testing.T) {
	p, ok := Lookup("nas")
	if !ok || p.Name != "nas" || p.Targets["nas"] == nil {
		t.Fatalf("Lookup(nas) = %+v, %v", p, ok)
	}
	if _, ok := Lookup("s3"); ok {
		t.Fatal("Lookup(s3) found a plugin")
	}
}
