package host

import (
	"reflect"
	"testing"
)

func TestRenameKeyAvoidsDuplicatePluginKey(t *testing.T) {
	in := []any{"path", "/x", "plugin", "/bin/runner", "pid", 7}
	got := renameKey(in, "plugin", "plugin_path")
	want := []any{"path", "/x", "plugin_path", "/bin/runner", "pid", 7}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if in[2] != "plugin" {
		t.Fatal("the caller's slice was modified")
	}
	if got := renameKey([]any{"a", 1}, "plugin", "plugin_path"); !reflect.DeepEqual(got, []any{"a", 1}) {
		t.Fatalf("without the key: %v", got)
	}
}
