package wptest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/internal/wptest"
)

// TestNewSiteIsARealWordPress builds a site and checks what WordPress's
// installer made of it: its tables, its first post, siteurl, and the
// files of a stock download.
func TestNewSiteIsARealWordPress(t *testing.T) {
	srv := mariadbtest.Start(t)
	start := time.Now()
	s := wptest.NewSite(t, wptest.Options{Root: filepath.Join(t.TempDir(), "SITE"), Server: srv, Prefix: "wpx_", URL: "http://blog.example.org"})
	t.Logf("site created in %s", time.Since(start))
	if !strings.HasPrefix(s.Version, "6.") {
		t.Fatalf("version %q", s.Version)
	}
	if got := s.Option(t, "siteurl"); got != "http://blog.example.org" {
		t.Fatalf("siteurl %q", got)
	}
	if got := s.Post(t, 1); !strings.Contains(got, "Welcome to WordPress") {
		t.Fatalf("first post %q", got)
	}
	for _, f := range []string{"wp-config.php", "wp-includes/version.php", "wp-content/themes/twentytwentythree/style.css", "wp-includes/js/underscore.min.js", "wp-includes/ID3/getid3.php"} {
		fi, err := os.Lstat(filepath.Join(s.Root, f))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	n := s.Query(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'wpx\\_%'")
	if n[0][0] != "12" {
		t.Fatalf("%s tables", n[0][0])
	}
}
