package dump

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tricky holds every kind of value the format must carry exactly.
var tricky = []string{
	"CREATE DATABASE rt CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
	`CREATE TABLE rt.types (
		id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		b BLOB, vb VARBINARY(16), bn BINARY(4),
		t TEXT, e VARCHAR(20) NOT NULL DEFAULT '',
		emoji VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
		latin VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci,
		d DATE NOT NULL DEFAULT '0000-00-00', dt DATETIME(6) DEFAULT '0000-00-00 00:00:00', ts TIMESTAMP NULL, tm TIME,
		y YEAR,
		bits BIT(10), j JSON, dec1 DECIMAL(30,10), f FLOAT, dbl DOUBLE, big BIGINT, ubig BIGINT UNSIGNED,
		en ENUM('a','b','c'), st SET('x','y','z'),
		gen_v INT AS (id * 2) VIRTUAL, gen_s VARCHAR(40) AS (CONCAT(e, '!')) STORED,
		KEY (e)
	) ENGINE=InnoDB AUTO_INCREMENT=1000`,
	`INSERT INTO rt.types (id, b, vb, bn, t, e, emoji, latin, d, dt, ts, tm, y, bits, j, dec1, f, dbl, big, ubig, en, st) VALUES
	  (1, 0x00FF0A0D1A5C27225C0000, X'', 0x01020304, 'line1\nline2\r\t\\ ''quoted'' "dq" ;\n-- not a comment', '', '😀𝄞漢字', 'café', '0000-00-00', '0000-00-00 00:00:00', '2038-01-19 03:14:07', '-838:59:59', 2155,
	   b'1010101010', '{"a": [1, 2.5, "x\\"y"], "b": null}', '12345678901234567890.0123456789', 3.5, 2.718281828459045, -9223372036854775808, 18446744073709551615, 'b', 'x,z'),
	  (2, NULL, NULL, NULL, NULL, '', NULL, NULL, '2024-02-29', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ''),
	  (3, '', '', 0x00000000, '', 'x', '', '', '1000-01-01', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', '00:00:00', 1901, b'0', '[]', '-0.0000000001', -1.25e-10, 1e308, 0, 0, 'a', '')`,
	"CREATE TABLE rt.`odd/name:%` (`we``ird` INT PRIMARY KEY, `sp ace` VARCHAR(5))",
	"INSERT INTO rt.`odd/name:%` VALUES (1, 'a'), (2, 'b')",
	"CREATE TABLE rt.nopk (a INT, b VARCHAR(10)) ENGINE=InnoDB",
	"INSERT INTO rt.nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL)",
	"CREATE TABLE rt.log (id INT PRIMARY KEY, msg TEXT)",
	"INSERT INTO rt.log VALUES (1, 'old')",
	"CREATE TABLE rt.my (id INT PRIMARY KEY) ENGINE=MyISAM",
	"INSERT INTO rt.my VALUES (7)",
	"CREATE VIEW rt.v1 AS SELECT id, e FROM rt.types WHERE id < 3",
	"CREATE VIEW rt.v0 AS SELECT COUNT(*) AS n FROM rt.v1",
	"CREATE TRIGGER rt.tr_log BEFORE INSERT ON rt.log FOR EACH ROW BEGIN SET NEW.msg = CONCAT(NEW.msg, ';;'); END",
	"CREATE PROCEDURE rt.p_add(IN n INT) BEGIN INSERT INTO log VALUES (n, 'p'); SET @x = n; END",
	"CREATE FUNCTION rt.f_twice(n INT) RETURNS INT DETERMINISTIC RETURN n * 2",
	"CREATE EVENT rt.ev ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM rt.log WHERE id < 0",
}

func TestRoundTripEveryTrickyValue(t *testing.T) {
	sqlExec(t, tricky...)
	ctx := context.Background()
	var sink memSink
	res, err := Dump(ctx, Config{Conn: rootConn(), Filter: Filter{Databases: []string{"rt"}}, Parallel: 2}, sink.sink)
	if err != nil {
		t.Fatal(err)
	}
	// One part each: the tables come in order of (estimated) size, which
	// is the server's business, and the objects after them.
	names := sink.names()
	if len(names) == 0 || names[len(names)-1] != "rt:objects" {
		t.Fatalf("items %q: the objects item is not last", names)
	}
	tables := slices.Clone(names[:len(names)-1])
	slices.Sort(tables)
	if want := "rt/log rt/my rt/nopk rt/odd%2Fname%3A%25 rt/types"; strings.Join(tables, " ") != want {
		t.Fatalf("table items %q, want %q", names, want)
	}
	if len(res.NonTransactional) != 1 || res.NonTransactional[0] != "rt.my" {
		t.Fatalf("non-transactional tables: %q", res.NonTransactional)
	}
	if res.Manifest.BinlogFile == "" || res.Manifest.GTID == "" {
		t.Fatalf("no binlog position: %+v", res.Manifest)
	}
	for _, it := range sink.items {
		if !it.closed || it.err != nil {
			t.Fatalf("item %s: closed %v, err %v", it.Name, it.closed, it.err)
		}
	}
	m, err := DecodeManifest(res.Manifest.Encode())
	if err != nil {
		t.Fatal(err)
	}
	lr, err := Load(ctx, LoadConfig{Conn: rootConn(), Parallel: 2, Manifest: m, Target: map[string]string{"rt": "rt2"}}, sink.source())
	if err != nil {
		t.Fatal(err)
	}
	if lr.Tables != 5 || lr.Verified != 5 {
		t.Fatalf("load result %+v", lr)
	}
	for _, tb := range []string{"types", "odd/name:%", "nopk", "log", "my"} {
		if a, b := tableDump(t, "rt", tb), tableDump(t, "rt2", tb); a != b {
			t.Fatalf("table %s differs:\n%q\n%q", tb, a, b)
		}
	}
	if got := sqlRows(t, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='rt2' AND TABLE_NAME='types'"); got[0][0] != "1000" {
		t.Fatalf("AUTO_INCREMENT %q", got)
	}
	cols := "SELECT COLUMN_NAME, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME,''), IFNULL(COLLATION_NAME,''), IFNULL(COLUMN_DEFAULT,'<null>'), EXTRA, IFNULL(GENERATION_EXPRESSION,'') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='%s' ORDER BY TABLE_NAME, ORDINAL_POSITION"
	if a, b := sqlRows(t, strings.Replace(cols, "%s", "rt", 1)), sqlRows(t, strings.Replace(cols, "%s", "rt2", 1)); !equalRows(a, b) {
		t.Fatalf("columns differ:\n%q\n%q", a, b)
	}
	if got := sqlRows(t, "SELECT n FROM rt2.v0"); got[0][0] != "2" {
		t.Fatalf("view v0: %q", got)
	}
	if got := sqlRows(t, "SELECT rt2.f_twice(21)"); got[0][0] != "42" {
		t.Fatalf("function: %q", got)
	}
	sqlExec(t, "INSERT INTO rt2.log VALUES (5, 'new')", "CALL rt2.p_add(6)")
	if got := sqlRows(t, "SELECT msg FROM rt2.log WHERE id = 5"); got[0][0] != "new;;" {
		t.Fatalf("trigger: %q", got)
	}
	if got := sqlRows(t, "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA='rt2' AND EVENT_NAME='ev' AND STATUS='DISABLED'"); got[0][0] != "1" {
		t.Fatalf("event: %q", got)
	}
	if got := sqlRows(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'runner_restore_%'"); got[0][0] != "0" {
		t.Fatalf("staging databases left: %q", got)
	}

	// The stock client loads the items as they are, in order.
	sqlExec(t, "CREATE DATABASE rt3 CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	for _, it := range sink.items {
		cmd := exec.Command("mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", "-P"+strconv.Itoa(srv.Port), "-uroot", "rt3")
		cmd.Stdin = bytes.NewReader(it.buf.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mariadb < %s: %v\n%s", it.Name, err, out)
		}
	}
	for _, tb := range []string{"types", "odd/name:%", "nopk", "log", "my"} {
		if a, b := tableDump(t, "rt", tb), tableDump(t, "rt3", tb); a != b {
			t.Fatalf("table %s loaded by the mariadb client differs:\n%q\n%q", tb, a, b)
		}
	}
	if got := sqlRows(t, "SELECT rt3.f_twice(2), (SELECT n FROM rt3.v0)"); got[0][0] != "4" || got[0][1] != "2" {
		t.Fatalf("objects loaded by the mariadb client: %q", got)
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x1f") != strings.Join(b[i], "\x1f") {
			return false
		}
	}
	return true
}
