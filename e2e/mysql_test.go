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
	if r.code == 0 || !strings.Contains(r.stderr, "job db is primary on this server: restoring into place overwrites its live data; give --force") {
		t.Fatalf("restore over live tables without --force: %s", r)
	}
	if got := sqlOut(t, srv, "SELECT COUNT(*) FROM blog.posts WHERE title = 'after the backup'"); got != "1" {
		t.Fatal("a refused restore changed the live data")
	}
	changed := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog.posts ORDER BY id")
	r = runner(t, nil, "-C", dir, "restore", "db", "--force")
	if r.code != 0 {
		t.Fatalf("restore --force: %s", r)
	}
	mustContain(t, r, "into place", "Safety snapshot", "runner restore db --snapshot")
	if got := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog.posts ORDER BY id"); got != want {
		t.Fatalf("rows after restore --force:\n%s\nwant:\n%s", got, want)
	}
	// The safety snapshot undoes the restore.
	var safety string
	for _, line := range strings.Split(r.stdout, "\n") {
		if i := strings.Index(line, "--snapshot "); i >= 0 {
			safety = strings.Fields(line[i+len("--snapshot "):])[0]
		}
	}
	if r := runner(t, nil, "-C", dir, "restore", "db", "--force", "--snapshot", safety, "--no-safety-snapshot"); r.code != 0 {
		t.Fatalf("restore of the safety snapshot: %s", r)
	}
	if got := sqlOut(t, srv, "SELECT id, HEX(title), HEX(body), note IS NULL, note FROM blog.posts ORDER BY id"); got != changed {
		t.Fatalf("rows after undoing the restore:\n%s\nwant:\n%s", got, changed)
	}

	// Usage mistakes are caught before anything is opened.
	r = runner(t, nil, "-C", dir, "restore", "db", "--to", t.TempDir(), "--force")
	if r.code != 1 || !strings.Contains(r.stderr, "with --to DIR alone the files are written by runner itself") {
		t.Fatalf("--to with --force: %s", r)
	}
}
