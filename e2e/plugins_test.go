package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func helloConfig(path, sum, nas string) string {
	return fmt.Sprintf(`
plugin "hello" {
  path   = %q
  sha256 = %q
}

target "nas" "local" {
  path = %q
}

source "command" "uptime" {
  command = ["/bin/echo", greeting("operator")]
}

job "uptime" {
  source = source.command.uptime
  target = target.nas.local
}
`, path, sum, nas)
}

func TestExternalPluginPinned(t *testing.T) {
	bin := filepath.Join(binDir, "runner-plugin-hello")
	dir := writeConfig(t, map[string]string{"main.hcl": helloConfig(bin, sha256File(t, bin), t.TempDir())})
	if r := runner(t, nil, "-C", dir, "validate"); r.code != 0 {
		t.Fatalf("validate with the example plugin: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "init", "target.nas.local"); r.code != 0 {
		t.Fatalf("init: %s", r)
	}
	r := runner(t, nil, "-C", dir, "plan")
	if r.code != 0 {
		t.Fatalf("plan with the example plugin: %s", r)
	}
	mustContain(t, r, "job uptime", "source.command.uptime", "capture")
}

// A plugin whose file does not match its pinned checksum is refused before
// it is ever executed.
func TestExternalPluginChecksumMismatchRefusedBeforeRun(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "executed")
	evil := filepath.Join(t.TempDir(), "runner-plugin-evil")
	script := "#!/bin/sh\ntouch " + marker + "\nexit 1\n"
	if err := os.WriteFile(evil, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)
	dir := writeConfig(t, map[string]string{"main.hcl": helloConfig(evil, wrong, t.TempDir())})
	r := runner(t, nil, "-C", dir, "validate")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	mustContain(t, r, "checksum mismatch", wrong)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the plugin was executed despite its wrong checksum")
	}
}

func TestPluginsCommandListsBuiltinsAndDirectoryPlugins(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": "runner {\n  parallel = 1\n}\n"})
	pdir := t.TempDir()
	src := filepath.Join(binDir, "runner-plugin-hello")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "runner-plugin-hello"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runner(t, []string{"RUNNER_PLUGIN_PATH=" + pdir}, "-C", dir, "plugins")
	if r.code != 0 {
		t.Fatalf("plugins: %s", r)
	}
	mustContain(t, r, "files", "source.files", "target.nas", "hook.exec", "hook.vpn", "built-in", "hello", "source.command", pdir)
}

// A source plugin found in a plugin directory is usable without a plugin
// block.
func TestDirectoryPluginResolvesUnknownType(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
target "nas" "local" {
  path = %q
}
source "command" "hi" {
  command = ["/bin/echo", "hi"]
}
job "hi" {
  source = source.command.hi
  target = target.nas.local
}
`, t.TempDir())})
	r := runner(t, []string{"RUNNER_PLUGIN_PATH=" + binDir}, "-C", dir, "validate")
	if r.code != 0 {
		t.Fatalf("validate: %s", r)
	}
}
