package wordpress_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk/sdktest"
	"github.com/backup-runner/runner/plugins/wordpress"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeWordPress makes the two files that make a directory a WordPress root.
func fakeWordPress(t *testing.T, dir string) {
	write(t, filepath.Join(dir, "wp-config.php"), "<?php\n")
	write(t, filepath.Join(dir, "wp-includes/version.php"), "<?php\n$wp_version = '6.1.9';\n")
}

func TestWordPressSitesFindsRootsInSiteDirsAndSubdirs(t *testing.T) {
	vhosts := t.TempDir()
	fakeWordPress(t, filepath.Join(vhosts, "blog.example.org/SITE"))
	write(t, filepath.Join(vhosts, "blog.example.org/logs/access.log"), "")
	fakeWordPress(t, filepath.Join(vhosts, "top.example.org"))
	fakeWordPress(t, filepath.Join(vhosts, "other.example.org/htdocs"))
	write(t, filepath.Join(vhosts, "static.example.org/index.html"), "<html>")
	// Broken: wp-config.php but no wp-includes/version.php.
	write(t, filepath.Join(vhosts, "broken.example.org/SITE/wp-config.php"), "<?php\n")
	write(t, filepath.Join(vhosts, "not-a-dir"), "")
	fakeWordPress(t, filepath.Join(vhosts, ".hidden"))

	c := sdktest.Start(t, wordpress.Plugin())
	v, err := c.CallFunction(context.Background(), "wordpress_sites", []cty.Value{cty.StringVal(vhosts)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, el := range v.AsValueMap() {
		got[k] = el.AsString()
	}
	want := map[string]string{
		"blog.example.org":  filepath.Join(vhosts, "blog.example.org/SITE"),
		"top.example.org":   filepath.Join(vhosts, "top.example.org"),
		"other.example.org": filepath.Join(vhosts, "other.example.org/htdocs"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("%s: got %q, want %q", k, got[k], w)
		}
	}

	// SITE wins over another WordPress subdirectory; two others are an error.
	fakeWordPress(t, filepath.Join(vhosts, "blog.example.org/old"))
	if s, err := wordpress.FindSites(vhosts); err != nil || s["blog.example.org"] != filepath.Join(vhosts, "blog.example.org/SITE") {
		t.Fatalf("SITE first: %v %v", s, err)
	}
	fakeWordPress(t, filepath.Join(vhosts, "other.example.org/staging"))
	if _, err := wordpress.FindSites(vhosts); err == nil || !strings.Contains(err.Error(), filepath.Join(vhosts, "other.example.org")) || !strings.Contains(err.Error(), "htdocs, staging") {
		t.Fatalf("two roots: %v", err)
	}

	if _, err := c.CallFunction(context.Background(), "wordpress_sites", []cty.Value{cty.StringVal(filepath.Join(vhosts, "nope"))}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing root: %v", err)
	}
	empty, err := c.CallFunction(context.Background(), "wordpress_sites", []cty.Value{cty.StringVal(filepath.Join(vhosts, "static.example.org"))})
	if err != nil || empty.LengthInt() != 0 {
		t.Fatalf("no sites: %#v %v", empty, err)
	}
}

func TestCompatFunctionsReadTheOldPerSiteFiles(t *testing.T) {
	dir := t.TempDir()
	c := sdktest.Start(t, wordpress.Plugin())
	call := func(name string, args ...string) (string, error) {
		var vs []cty.Value
		for _, a := range args {
			vs = append(vs, cty.StringVal(a))
		}
		v, err := c.CallFunction(context.Background(), name, vs)
		if err != nil {
			return "", err
		}
		return v.AsString(), nil
	}
	// Defaults when the files are absent.
	if got, err := call("wordpress_quota", dir, "1000MB"); err != nil || got != "1000MB" {
		t.Fatalf("quota default: %q %v", got, err)
	}
	if got, err := call("wordpress_full_every", dir, "1M"); err != nil || got != "1M" {
		t.Fatalf("full default: %q %v", got, err)
	}
	if got, err := call("wordpress_primary", dir); err != nil || got != "" {
		t.Fatalf("no marker: %q %v", got, err)
	}

	for content, want := range map[string]string{"1500\n": "1500MB", " 200 ": "200MB", "2GB": "2GB"} {
		write(t, filepath.Join(dir, "max_NAS_space"), content)
		if got, err := call("wordpress_quota", dir, "1000MB"); err != nil || got != want {
			t.Errorf("quota %q: %q %v, want %q", content, got, err, want)
		}
	}
	write(t, filepath.Join(dir, "max_NAS_space"), "lots\n")
	if _, err := call("wordpress_quota", dir, "1000MB"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "max_NAS_space")) {
		t.Errorf("bad quota: %v", err)
	}

	for content, want := range map[string]string{"1M\n": "1M", "1W": "1w", "28D": "28d", "3M": "3M", "1Y": "1y"} {
		write(t, filepath.Join(dir, "full_backup_freq"), content)
		if got, err := call("wordpress_full_every", dir, "1M"); err != nil || got != want {
			t.Errorf("full %q: %q %v, want %q", content, got, err, want)
		}
	}
	write(t, filepath.Join(dir, "full_backup_freq"), "monthly")
	if _, err := call("wordpress_full_every", dir, "1M"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "full_backup_freq")) {
		t.Errorf("bad frequency: %v", err)
	}

	write(t, filepath.Join(dir, "PRIMARY_IS_web1"), "")
	if got, err := call("wordpress_primary", dir); err != nil || got != "web1" {
		t.Fatalf("marker: %q %v", got, err)
	}
	write(t, filepath.Join(dir, "PRIMARY_IS_web2"), "")
	if _, err := call("wordpress_primary", dir); err == nil || !strings.Contains(err.Error(), "PRIMARY_IS_web1") || !strings.Contains(err.Error(), "PRIMARY_IS_web2") {
		t.Fatalf("two markers: %v", err)
	}
	if _, err := call("wordpress_primary", "relative/dir"); err == nil {
		t.Fatal("relative path accepted")
	}
}
