package dump

import (
	"io"
	"strings"
	"testing"
)

func TestSplitterFollowsTheClientsRules(t *testing.T) {
	script := "-- header ; not a statement\nSET a = 1;\n/* block ; */ SELECT 'x;y', \"q\\\"; \", `b;t` ;\n" +
		"# hash comment ;\nDELIMITER ;;\nCREATE TRIGGER t BEGIN SET x = 1; SET y = 2; END;;\nDELIMITER ;\n" +
		"/*!40101 SET NAMES utf8mb4 */;\nINSERT INTO t VALUES ('a\\'b;c');\n-- trailing comment\n"
	sp := NewSplitter(strings.NewReader(script))
	var got []string
	for {
		s, err := sp.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimSpace(string(s)))
	}
	want := []string{
		"SET a = 1",
		"/* block ; */ SELECT 'x;y', \"q\\\"; \", `b;t`",
		"CREATE TRIGGER t BEGIN SET x = 1; SET y = 2; END",
		"/*!40101 SET NAMES utf8mb4 */",
		"INSERT INTO t VALUES ('a\\'b;c')",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("statements:\n%q\nwant\n%q", got, want)
	}
}

func TestFilterGlobs(t *testing.T) {
	f := Filter{ExcludeTables: []string{"*.wp_sessions", "*.*_log", "shop.tmp?"}, Databases: []string{"blog", "shop"}}
	for _, c := range []struct {
		db, table string
		want      bool
	}{
		{"blog", "wp_posts", true},
		{"blog", "wp_sessions", false},
		{"shop", "audit_log", false},
		{"shop", "tmp1", false},
		{"shop", "tmp12", true},
		{"other", "x", false},
	} {
		if got := f.Table(c.db, c.table); got != c.want {
			t.Errorf("%s.%s: %v, want %v", c.db, c.table, got, c.want)
		}
	}
	g := Filter{IncludeTables: []string{"wp_*"}}
	if !g.Table("blog", "wp_posts") || g.Table("blog", "users") || g.Table("mysql", "wp_x") {
		t.Error("include pattern without a dot")
	}
}

// MySQL 8.4 removed SHOW MASTER STATUS; Debian ships only MariaDB, so the
// choice of statement is checked here against the VERSION() strings of
// the servers in question.
func TestBinlogStatusQueryFollowsTheServerVersion(t *testing.T) {
	for _, c := range []struct{ version, want string }{
		{"10.11.19-MariaDB-0+deb12u1-log", "SHOW MASTER STATUS"},
		{"11.8.2-MariaDB", "SHOW MASTER STATUS"},
		{"5.7.44-log", "SHOW MASTER STATUS"},
		{"8.0.36-0ubuntu0.22.04.1", "SHOW MASTER STATUS"},
		{"8.1.0", "SHOW MASTER STATUS"},
		{"8.2.0", "SHOW BINARY LOG STATUS"},
		{"8.4.3", "SHOW BINARY LOG STATUS"},
		{"9.1.0-commercial", "SHOW BINARY LOG STATUS"},
		{"10.0.1", "SHOW BINARY LOG STATUS"}, // a MySQL 10, should there be one
		{"", "SHOW MASTER STATUS"},
		{"unknown", "SHOW MASTER STATUS"},
	} {
		if got := binlogStatusQuery(c.version); got != c.want {
			t.Errorf("binlogStatusQuery(%q) = %q, want %q", c.version, got, c.want)
		}
	}
}
