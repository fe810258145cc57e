package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/backup-runner/runner/internal/mariadbtest"
)

// sqlOut runs SQL with the stock client against a private server.
func sqlOut(t *testing.T, srv *mariadbtest.Server, q string) string {
	t.Helper()
	out, err := exec.Command("mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", fmt.Sprintf("-P%d", srv.Port),
		"-uroot", "--default-character-set=utf8mb4", "-N", "-B", "-e", q).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

// A database backed up by apply and restored by runner restore, as an
// operator would: into another database beside the live one, then over the
// live one with --force, which a restore without --force refuses.
func TestMySQLBackupAndRestoreThroughTheCLI(t *testing.T) {
	srv := mariadbtest.Start(t)
	sqlOut(t, srv, `CREATE DATABASE blog;
CREATE TABLE blog.posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200) CHARACTER SET utf8mb4, body LONGBLOB, note TEXT NULL);
INSERT INTO blog.posts (title, body, note) VALUES ('héllo 🌍', 0x00FF10, NULL), ('', '', ''), ('third', REPEAT('x', 100000), 'n');
CREATE VIEW blog.titles AS SELECT id, title FROM blog.posts;`)
	want := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog.posts ORDER BY id")

	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
target "nas" "home" {
  path = %q
}
source "mysql" "db" {
  dsn       = "root@tcp(127.0.0.1:%d)/"
  databases = ["blog"]
}
job "db" {
  source = source.mysql.db
  target = target.nas.home
}
`, t.TempDir(), srv.Port)})
	mustInit(t, dir)
	if r := runner(t, nil, "-C", dir, "apply"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	r := runner(t, nil, "-C", dir, "-json", "snapshots", "db")
	mustContain(t, r, `"mysql.binlog_file"`, `"mysql.gtid"`)

	// Beside the live database.
	r = runner(t, nil, "-C", dir, "restore", "db", "--to-database", "blog_copy")
	if r.code != 0 {
		t.Fatalf("restore --to-database: %s", r)
	}
	mustContain(t, r, "Restored snapshot", "into database blog_copy")
	if got := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog_copy.posts ORDER BY id"); got != want {
		t.Fatalf("restored rows:\n%s\nwant:\n%s", got, want)
	}
	if got := sqlOut(t, srv, "SELECT COUNT(*) FROM blog_copy.titles"); got != "3" {
		t.Fatalf("restored view: %s", got)
	}

	// Over the live database: refused without --force, done with it.
	sqlOut(t, srv, "DELETE FROM blog.posts WHERE id = 1; INSERT INTO blog.posts (title) VALUES ('after the backup')")
	r = runner(t, nil, "-C", dir, "restore", "db")
	if r.code == 0 || !strings.Contains(r.stderr, "force") {
		t.Fatalf("restore over live tables without --force: %s", r)
	}
	if got := sqlOut(t, srv, "SELECT COUNT(*) FROM blog.posts WHERE title = 'after the backup'"); got != "1" {
		t.Fatal("a refused restore changed the live data")
	}
	if r := runner(t, nil, "-C", dir, "restore", "db", "--force"); r.code != 0 {
		t.Fatalf("restore --force: %s", r)
	}
	if got := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog.posts ORDER BY id"); got != want {
		t.Fatalf("rows after restore --force:\n%s\nwant:\n%s", got, want)
	}

	// Usage mistakes are caught before anything is opened.
	r = runner(t, nil, "-C", dir, "restore", "db", "--to", t.TempDir(), "--to-database", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "do not go with --to DIR") {
		t.Fatalf("--to with --to-database: %s", r)
	}
}
