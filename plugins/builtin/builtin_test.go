package builtin

import (
	"sort"
	"strings"
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
	want := []string{"exec", "files", "mysql", "nas", "notify", "vpn", "wordpress"}
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
// loads the plugins: valid schemas, and no block type provided twice (the
// host refuses to guess). A plugin with one block type is named after it.
func TestEverySchemaIsWellFormed(t *testing.T) {
	seen := map[string]string{}
	for _, p := range All() {
		types := 0
		check := func(kind, name string, s sdk.Schemer) {
			types++
			if other, dup := seen[kind+"."+name]; dup {
				t.Errorf("%s %q is provided by %s and %s", kind, name, other, p.Name)
			}
			seen[kind+"."+name] = p.Name
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
		if types == 0 {
			t.Errorf("plugin %s provides no block type", p.Name)
		}
		if types == 1 {
			for key, name := range seen {
				if name == p.Name && !strings.HasSuffix(key, "."+p.Name) {
					t.Errorf("plugin %s provides only %s: name it after it", p.Name, key)
				}
			}
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
