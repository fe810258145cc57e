// Command wordpress-demo is the README's first command (make demo): a real
// WordPress site on a private MariaDB, backed up by runner to a local
// directory standing in for a NAS, a post changed and a file deleted, then
// the site recovered to its snapshot, showing that the post and the file
// are back. It drives bin/runner exactly as an operator would, printing
// each command and its output.
//
// Everything lives under /tmp/runner-demo (DEMO_DIR moves it); the private
// MariaDB listens on a free loopback port and is stopped and removed at the
// end. RUNNER_BIN names the runner executable (default bin/runner).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/internal/wptest"
)

const job = `site["blog"]`

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	start := time.Now()
	base := os.Getenv("DEMO_DIR")
	if base == "" {
		base = "/tmp/runner-demo"
	}
	runnerBin := os.Getenv("RUNNER_BIN")
	if runnerBin == "" {
		runnerBin = "bin/runner"
	}
	runnerBin, err := filepath.Abs(runnerBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(runnerBin); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", runnerBin, err)
	}
	if err := os.RemoveAll(base); err != nil {
		return err
	}
	vhosts, cfgDir := filepath.Join(base, "vhosts"), filepath.Join(base, "config")
	root := filepath.Join(vhosts, "blog", "SITE")
	for _, d := range []string{root, cfgDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	step("Starting a private MariaDB (its own datadir, socket and loopback port)")
	db, err := mariadbtest.New()
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: stop MariaDB: %v\n", err)
		}
	}()
	fmt.Printf("MariaDB on 127.0.0.1:%d, socket %s\n", db.Port, db.Socket)

	step("Creating a WordPress site in " + root + " (Debian's WordPress files, the database made by WordPress's own installer)")
	site, err := wptest.Create(wptest.Options{Root: root, Server: db, Database: "blog", User: "blog", URL: "https://blog.example.org", Title: "Runner demo blog"})
	if err != nil {
		return err
	}
	if err := site.WriteConfig("localhost"); err != nil { // the server's socket, as on a web server
		return err
	}
	fmt.Printf("WordPress %s, database %q, table prefix %q\n", site.Version, site.Database, site.Prefix)

	config := fmt.Sprintf(`# The demo configuration: every WordPress site under the vhosts directory,
# backed up to a local directory standing in for a NAS.
runner {
  state_dir = %q
}

target "nas" "local" {
  path        = %q
  create_path = true
}

source "wordpress" "site" {
  for_each  = wordpress_sites(%q)
  root      = each.value
  site_dir  = "%s/${each.key}"
  db_socket = %q
}

policy "nightly" {
  schedule   = "daily 03:00"
  keep_daily = 14
}

job "site" {
  for_each = source.wordpress.site
  source   = each.value
  target   = target.nas.local
  policy   = policy.nightly
}
`, filepath.Join(base, "state"), filepath.Join(base, "nas"), vhosts, vhosts, db.Socket)
	if err := os.WriteFile(filepath.Join(cfgDir, "main.hcl"), []byte(config), 0o644); err != nil {
		return err
	}
	step("The configuration, " + filepath.Join(cfgDir, "main.hcl"))
	fmt.Print(config)

	r := func(args ...string) error { return runner(runnerBin, cfgDir, args...) }
	for _, args := range [][]string{
		{"validate"},
		{"init", "target.nas.local"},
		{"plan"},
		{"apply"},
		{"snapshots", job},
	} {
		if err := r(args...); err != nil {
			return err
		}
	}

	conn, err := client.Connect(db.Addr(), "root", "", site.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	post := func() (string, error) {
		res, err := conn.Execute("SELECT post_title, post_content FROM " + site.Table("posts") + " WHERE ID = 1")
		if err != nil {
			return "", err
		}
		if len(res.Values) == 0 {
			return "", errors.New("post 1 is gone")
		}
		title, _ := res.GetString(0, 0)
		content, _ := res.GetString(0, 1)
		return fmt.Sprintf("%q: %.60q", title, content), nil
	}
	before, err := post()
	if err != nil {
		return err
	}
	license := filepath.Join(root, "readme.html")

	step("Someone edits the first post and deletes a file after the backup")
	if _, err := conn.Execute("UPDATE " + site.Table("posts") + " SET post_title = 'Oops', post_content = 'All my words are gone' WHERE ID = 1"); err != nil {
		return err
	}
	if err := os.Remove(license); err != nil {
		return err
	}
	changed, err := post()
	if err != nil {
		return err
	}
	fmt.Printf("post 1 was %s\npost 1 is now %s\n%s deleted\n", before, changed, license)

	step("Recovering the site to its snapshot: files, database, into place")
	if err := r("restore", job, "--force"); err != nil {
		return err
	}
	after, err := post()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(license)
	fmt.Printf("post 1 is back to %s\n%s is back: %v\n", after, license, statErr == nil)
	if after != before || statErr != nil {
		return fmt.Errorf("the recovery did not bring the site back: post %s (want %s), readme.html: %v", after, before, statErr)
	}
	step(fmt.Sprintf("Done in %.1f s: the site is as it was when it was backed up. The files, the configuration and the repository are in %s.", time.Since(start).Seconds(), base))
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

// runner runs bin/runner as an operator would and shows it.
func runner(bin, cfgDir string, args ...string) error {
	args = append([]string{"-C", cfgDir}, args...)
	fmt.Printf("\n$ runner %s\n", quoteArgs(args))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("runner %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, `[]"' `) {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
