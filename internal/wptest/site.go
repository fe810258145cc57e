package wptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/backup-runner/runner/internal/mariadbtest"
)

// Options describe a site to create. Only Root and Server are required.
type Options struct {
	// Root is the WordPress root to create (it may exist and be empty).
	Root   string
	Server *mariadbtest.Server
	// Database, User and Password: the site's database and the account
	// WordPress uses (created with privileges on that database only).
	// Defaults: "wp" + a random suffix, the database name, a random one.
	Database, User, Password string
	// Prefix is $table_prefix (default "wp_").
	Prefix string
	// URL is siteurl and home (default http://example.org).
	URL   string
	Title string // default "Test site"
	// NoInstall creates the database and wp-config.php but does not run
	// the installer (no tables).
	NoInstall bool
	// NoRestoreGrant leaves out the grant restores need (see
	// RestoreGrant): the user then has privileges on its database only.
	NoRestoreGrant bool
}

// RestoreGrant is what a site's database user needs, besides its own
// database, for the runner to restore the site with the credentials of
// wp-config.php: the mysql restore loads into staging databases named
// runner_restore_* before it swaps the tables in. %s is the user.
const RestoreGrant = "GRANT ALL PRIVILEGES ON `runner\\_restore\\_%%`.* TO '%s'@'%%'"

// Site is a WordPress site made by NewSite.
type Site struct {
	Root                     string
	Server                   *mariadbtest.Server
	Database, User, Password string
	Prefix                   string
	URL                      string
	Version                  string
}

// NewSite creates a WordPress site: the files in o.Root, a wp-config.php
// made from wp-config-sample.php as WordPress's setup does, the database
// and its user on o.Server, and the tables and first post through
// WordPress's own installer (wp_install, run by php-cli).
func NewSite(t testing.TB, o Options) *Site {
	t.Helper()
	s, err := Create(o)
	if err != nil {
		t.Fatalf("wptest: %v", err)
	}
	return s
}

// Create is NewSite outside a test (the demo): it returns the error.
func Create(o Options) (*Site, error) {
	if o.Root == "" || o.Server == nil {
		return nil, fmt.Errorf("NewSite needs Root and Server")
	}
	distDir, version, err := Fetch()
	if err != nil {
		return nil, err
	}
	if o.Database == "" {
		o.Database = "wp" + randHex(4)
	}
	if o.User == "" {
		o.User = o.Database
	}
	if o.Password == "" {
		o.Password = randHex(12)
	}
	if o.Prefix == "" {
		o.Prefix = "wp_"
	}
	if o.URL == "" {
		o.URL = "http://example.org"
	}
	if o.Title == "" {
		o.Title = "Test site"
	}
	s := &Site{Root: o.Root, Server: o.Server, Database: o.Database, User: o.User, Password: o.Password, Prefix: o.Prefix, URL: o.URL, Version: version}
	if err := CopyTree(distDir, o.Root); err != nil {
		return nil, fmt.Errorf("copy WordPress into %s: %w", o.Root, err)
	}
	if err := s.WriteConfig("127.0.0.1:" + strconv.Itoa(o.Server.Port)); err != nil {
		return nil, err
	}
	c, err := client.Connect(o.Server.Addr(), "root", "", "")
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.Server.Addr(), err)
	}
	defer c.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS `" + o.Database + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", o.User, o.Password),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%'", o.Database, o.User),
	} {
		if _, err := c.Execute(q); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Fields(q)[0]+" "+strings.Fields(q)[1], err)
		}
	}
	if !o.NoRestoreGrant {
		if _, err := c.Execute(fmt.Sprintf(RestoreGrant, o.User)); err != nil {
			return nil, fmt.Errorf("grant the restore privileges: %w", err)
		}
	}
	if o.NoInstall {
		return s, nil
	}
	if err := s.install(o.Title); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteConfig (re)writes Root/wp-config.php from wp-config-sample.php
// with the site's database settings and dbHost as DB_HOST.
func (s *Site) WriteConfig(dbHost string) error {
	sample, err := os.ReadFile(filepath.Join(s.Root, "wp-config-sample.php"))
	if err != nil {
		return fmt.Errorf("read wp-config-sample.php: %w", err)
	}
	text := string(sample)
	for from, to := range map[string]string{
		"'database_name_here'":   phpQuote(s.Database),
		"'username_here'":        phpQuote(s.User),
		"'password_here'":        phpQuote(s.Password),
		"'localhost'":            phpQuote(dbHost),
		"'utf8'":                 "'utf8mb4'",
		"$table_prefix = 'wp_';": "$table_prefix = " + phpQuote(s.Prefix) + ";",
	} {
		if !strings.Contains(text, from) {
			return fmt.Errorf("wp-config-sample.php has no %s", from)
		}
		text = strings.Replace(text, from, to, 1)
	}
	for strings.Contains(text, "'put your unique phrase here'") {
		text = strings.Replace(text, "'put your unique phrase here'", phpQuote(randHex(32)), 1)
	}
	return os.WriteFile(filepath.Join(s.Root, "wp-config.php"), []byte(text), 0o640)
}

// phpQuote writes s as a single-quoted PHP string.
func phpQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// installScript runs WordPress's installer as wp-admin/install.php does.
const installScript = `<?php
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = parse_url($argv[2], PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
$_SERVER['SERVER_PORT'] = '80';
define('WP_SITEURL', $argv[2]);
define('WP_HOME', $argv[2]);
require $argv[1] . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$r = wp_install($argv[3], 'admin', 'admin@example.org', true, '', $argv[4]);
if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message() . "\n"); exit(1); }
update_option('siteurl', $argv[2]);
update_option('home', $argv[2]);
echo "installed\n";
`

func (s *Site) install(title string) error {
	php, err := exec.LookPath("php")
	if err != nil {
		return fmt.Errorf("php not found: the WordPress installer runs through php-cli (apt-get install php-cli php-mysql)")
	}
	script := filepath.Join(os.TempDir(), "wptest-install-"+randHex(6)+".php")
	if err := os.WriteFile(script, []byte(installScript), 0o600); err != nil {
		return err
	}
	defer os.Remove(script)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, php, "-d", "display_errors=stderr", "-d", "error_reporting=E_ALL & ~E_DEPRECATED & ~E_NOTICE & ~E_WARNING",
		script, s.Root, s.URL, title, randHex(8))
	cmd.Dir = s.Root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed") {
		hint := ""
		if strings.Contains(string(out), "mysqli") || strings.Contains(string(out), "MySQL extension") {
			hint = " (install php-mysql)"
		}
		return fmt.Errorf("WordPress installer for %s failed%s: %v\n%s", s.Root, hint, err, tail(out))
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Conn connects to the site's server as root (closed at the test's end).
func (s *Site) Conn(t testing.TB) *client.Conn {
	t.Helper()
	c, err := client.Connect(s.Server.Addr(), "root", "", s.Database)
	if err != nil {
		t.Fatalf("wptest: connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Exec runs statements in the site's database.
func (s *Site) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	c := s.Conn(t)
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("wptest: %s: %v", q, err)
		}
	}
}

// Query returns the rows of q in the site's database as strings.
func (s *Site) Query(t testing.TB, q string) [][]string {
	t.Helper()
	r, err := s.Conn(t).Execute(q)
	if err != nil {
		t.Fatalf("wptest: %s: %v", q, err)
	}
	var out [][]string
	for i := range r.Values {
		var row []string
		for j := range r.Values[i] {
			v, _ := r.GetString(i, j)
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}

// Table is the name of one of the site's tables: Table("posts") is
// wp_posts for prefix wp_.
func (s *Site) Table(name string) string { return s.Prefix + name }

// Post returns the content of post id ("" if there is none).
func (s *Site) Post(t testing.TB, id int) string {
	t.Helper()
	rows := s.Query(t, fmt.Sprintf("SELECT post_content FROM `%s` WHERE ID = %d", s.Table("posts"), id))
	if len(rows) == 0 {
		return ""
	}
	return rows[0][0]
}

// SetPost changes the content of post id.
func (s *Site) SetPost(t testing.TB, id int, content string) {
	t.Helper()
	s.Exec(t, fmt.Sprintf("UPDATE `%s` SET post_content = '%s' WHERE ID = %d", s.Table("posts"), escapeSQL(content), id))
}

// Option returns an option of the options table.
func (s *Site) Option(t testing.TB, name string) string {
	t.Helper()
	rows := s.Query(t, fmt.Sprintf("SELECT option_value FROM `%s` WHERE option_name = '%s'", s.Table("options"), escapeSQL(name)))
	if len(rows) == 0 {
		return ""
	}
	return rows[0][0]
}

func escapeSQL(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(s)
}
