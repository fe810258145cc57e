package mariadbtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func query(t *testing.T, s *Server, sql string) string {
	t.Helper()
	out, err := exec.Command("mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", "-P"+strconv.Itoa(s.Port),
		"-uroot", "-N", "-B", "-e", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestPrivateServerWithBinlog(t *testing.T) {
	s := Start(t)
	if s.Port == 3306 {
		t.Fatal("the private server took the system port")
	}
	if got := query(t, s, "SELECT @@port, @@log_bin, @@binlog_format, @@datadir"); !strings.HasPrefix(got, strconv.Itoa(s.Port)+"\t1\tROW\t"+s.Dir) {
		t.Fatalf("server settings: %q", got)
	}
	query(t, s, "CREATE DATABASE t; CREATE TABLE t.x (id INT PRIMARY KEY); INSERT INTO t.x VALUES (1),(2)")
	if got := query(t, s, "SELECT COUNT(*) FROM t.x"); got != "2" {
		t.Fatalf("rows: %q", got)
	}
	if got := query(t, s, "SHOW BINARY LOGS"); !strings.Contains(got, "mysql-bin.") {
		t.Fatalf("no binlog: %q", got)
	}
	dir := s.Dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after Stop", dir)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}

func TestTwoServersSideBySide(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Port == b.Port || a.Dir == b.Dir {
		t.Fatal("two servers share a port or a directory")
	}
	query(t, a, "CREATE DATABASE only_on_a")
	if got := query(t, b, "SHOW DATABASES LIKE 'only_on_a'"); got != "" {
		t.Fatalf("server b sees a's database: %q", got)
	}
}
