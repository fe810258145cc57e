package mysql_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/plugins/builtin/config"
	mysqlplugin "github.com/backup-runner/runner/plugins/mysql"
	"github.com/backup-runner/runner/plugins/mysql/dump"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

func TestValidate(t *testing.T) {
	src := &mysqlplugin.Source{}
	good := passwordFile(t, "pw", 0o600)
	open := passwordFile(t, "pw", 0o640)
	cases := []struct {
		name  string
		attrs map[string]cty.Value
		want  string // "" for valid
	}{
		{"a dsn and a password file are enough", map[string]cty.Value{"dsn": cty.StringVal("backup@tcp(db:3306)/"), "password_file": cty.StringVal(good)}, ""},
		{"host and user are enough", map[string]cty.Value{"host": cty.StringVal("db"), "user": cty.StringVal("backup")}, ""},
		{"a socket and user are enough", map[string]cty.Value{"socket": cty.StringVal("/run/mysqld/mysqld.sock"), "user": cty.StringVal("backup")}, ""},
		{"a password in the dsn is refused", map[string]cty.Value{"dsn": cty.StringVal("backup:secret@tcp(db:3306)/")}, "must not hold a password"},
		{"the refusal does not print the password", map[string]cty.Value{"dsn": cty.StringVal("backup:secret@tcp(db:3306)/"), "host": cty.StringVal("x")}, "either dsn or host"},
		{"a malformed dsn", map[string]cty.Value{"dsn": cty.StringVal("backup@db:3306")}, "want user@tcp(host:port)/"},
		{"no user", map[string]cty.Value{"host": cty.StringVal("db")}, "set user"},
		{"a relative socket", map[string]cty.Value{"socket": cty.StringVal("mysqld.sock"), "user": cty.StringVal("u")}, "absolute path"},
		{"a readable password file", map[string]cty.Value{"user": cty.StringVal("u"), "password_file": cty.StringVal(open)}, "readable by group or others"},
		{"a missing password file", map[string]cty.Value{"user": cty.StringVal("u"), "password_file": cty.StringVal("/nonexistent/pw")}, "no such file"},
		{"parallel out of range", map[string]cty.Value{"user": cty.StringVal("u"), "parallel": cty.NumberIntVal(0)}, "between 1 and 64"},
		{"a bad chunk size", map[string]cty.Value{"user": cty.StringVal("u"), "chunk_size": cty.StringVal("lots")}, "chunk_size"},
		{"a port out of range", map[string]cty.Value{"user": cty.StringVal("u"), "port": cty.NumberIntVal(70000)}, "out of range"},
		{"an empty pattern", map[string]cty.Value{"user": cty.StringVal("u"), "exclude_tables": strs("")}, "empty table pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diags := src.Validate(context.Background(), config.MustBuild(src.Schema(), c.attrs))
			var msgs []string
			for _, d := range diags {
				if d.Severity == schema.Error {
					msgs = append(msgs, d.Summary)
				}
			}
			got := strings.Join(msgs, "; ")
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("diagnostics %q, want %q", got, c.want)
			}
			if strings.Contains(got, "secret") {
				t.Fatalf("the password leaked: %q", got)
			}
		})
	}
}

// TestConsistentDumpUnderWritesRestoresTheBinlogPoint dumps while a
// writer commits continuously, restores into another database, and
// checks that the copy holds exactly the writer's transactions up to the
// recorded GTID.
func TestConsistentDumpUnderWritesRestoresTheBinlogPoint(t *testing.T) {
	c := conn(t, srv)
	run(t, c,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.ledger (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40)) ENGINE=InnoDB",
		"CREATE TABLE shop.counter (id INT PRIMARY KEY, n INT NOT NULL, last INT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO shop.counter VALUES (1, 0, 0)",
		"CREATE TABLE shop.filler (id INT PRIMARY KEY, pad VARCHAR(200)) ENGINE=InnoDB",
		"CREATE TABLE shop.sessions (id INT PRIMARY KEY)",
		"CREATE VIEW shop.totals AS SELECT COUNT(*) AS n, IFNULL(SUM(v), 0) AS s FROM shop.ledger",
		"CREATE TRIGGER shop.ledger_note BEFORE INSERT ON shop.ledger FOR EACH ROW SET NEW.note = CONCAT('#', NEW.id)",
	)
	// ~8 MB of filler, split into parts by chunk_size.
	for i := 0; i < 40; i++ {
		run(t, c, fmt.Sprintf("INSERT INTO shop.filler SELECT seq, REPEAT(CHAR(65 + seq %% 26), 190) FROM shop.seq_%d_to_%d", i*1000+1, i*1000+1000))
	}
	run(t, c, "ANALYZE TABLE shop.filler")
	// The writer: one transaction per ledger row, each logged with its GTID.
	type tx struct {
		id  int
		seq uint64
	}
	var (
		mu     sync.Mutex
		log    []tx
		stop   atomic.Bool
		werr   error
		wdone  = make(chan struct{})
		wconn  = conn(t, srv)
		nextID = 1
	)
	t.Cleanup(func() { stop.Store(true); <-wdone })
	go func() {
		defer close(wdone)
		for !stop.Load() {
			id := nextID
			nextID++
			q := []string{"BEGIN", fmt.Sprintf("INSERT INTO shop.ledger (id, v) VALUES (%d, %d)", id, id*3),
				fmt.Sprintf("UPDATE shop.counter SET n = n + 1, last = %d WHERE id = 1", id), "COMMIT"}
			for _, s := range q {
				if _, err := wconn.Execute(s); err != nil {
					werr = err
					return
				}
			}
			r, err := wconn.Execute("SELECT @@last_gtid")
			if err != nil {
				werr = err
				return
			}
			g, _ := r.GetString(0, 0)
			seq, _ := strconv.ParseUint(g[strings.LastIndexByte(g, '-')+1:], 10, 64)
			mu.Lock()
			log = append(log, tx{id, seq})
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)

	s := source(t)
	ctx := context.Background()
	inst := instance(t, s, map[string]cty.Value{
		"dsn": cty.StringVal(srv.DSN("")), "databases": strs("shop"), "exclude_tables": strs("*.sessions"),
		"parallel": cty.NumberIntVal(2), "chunk_size": cty.StringVal("2MB"),
	})
	plan, err := s.PlanCapture(ctx, inst)
	if err != nil || len(plan.Items) != 3 {
		t.Fatalf("plan: %+v, %v", plan, err)
	}
	var w memWriter
	if err := s.Capture(ctx, inst, &w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	<-wdone
	if werr != nil {
		t.Fatal(werr)
	}
	if w.done == nil {
		t.Fatal("no Done")
	}
	meta := w.done.Meta
	gtid := meta[dump.MetaGTID]
	if meta[dump.MetaBinlogFile] == "" || gtid == "" {
		t.Fatalf("snapshot meta lacks the binlog position: %v", meta)
	}
	var names []string
	parts := 0
	for _, it := range w.items {
		names = append(names, it.item.Name)
		if strings.HasPrefix(it.item.Name, "shop/filler") {
			parts++
		}
		if !it.closed || it.err != nil {
			t.Fatalf("item %s: %v", it.item.Name, it.err)
		}
	}
	if parts < 3 || strings.Contains(strings.Join(names, " "), "sessions") {
		t.Fatalf("items %q: want filler in parts and no sessions", names)
	}
	// Which writer transactions the snapshot holds.
	snapSeq, _ := strconv.ParseUint(gtid[strings.LastIndexByte(gtid, '-')+1:], 10, 64)
	var want []int
	mu.Lock()
	for _, x := range log {
		if x.seq <= snapSeq {
			want = append(want, x.id)
		}
	}
	total := len(log)
	mu.Unlock()
	if len(want) == 0 || len(want) == total {
		t.Fatalf("the dump did not happen during the writes: %d of %d transactions before it", len(want), total)
	}

	// Restore into another database through the harness, with item
	// names only, as the repository gives them back.
	w.stripMeta()
	req := sdk.ApplyRequest{Instance: inst, SnapshotMeta: meta, Options: map[string]string{"database": "shop_copy"}}
	if err := s.Apply(ctx, req, w.reader()); err != nil {
		t.Fatal(err)
	}
	n := one(t, c, "SELECT COUNT(*) FROM shop_copy.ledger")
	maxID := one(t, c, "SELECT IFNULL(MAX(id), 0) FROM shop_copy.ledger")
	if n != strconv.Itoa(len(want)) || maxID != strconv.Itoa(want[len(want)-1]) {
		t.Fatalf("restored ledger has %s rows up to id %s; the binlog point holds %d rows up to id %d", n, maxID, len(want), want[len(want)-1])
	}
	if got := one(t, c, "SELECT CONCAT(n, ',', last) FROM shop_copy.counter"); got != fmt.Sprintf("%d,%d", len(want), want[len(want)-1]) {
		t.Fatalf("restored counter %q, want %d,%d", got, len(want), want[len(want)-1])
	}
	if got := one(t, c, "SELECT n FROM shop_copy.totals"); got != n {
		t.Fatalf("view totals: %s", got)
	}
	if got := one(t, c, "SELECT COUNT(*) FROM shop_copy.filler"); got != "40000" {
		t.Fatalf("filler rows %s", got)
	}
	run(t, c, "INSERT INTO shop_copy.ledger (id, v) VALUES (1000000, 1)")
	if got := one(t, c, "SELECT note FROM shop_copy.ledger WHERE id = 1000000"); got != "#1000000" {
		t.Fatalf("trigger: %q", got)
	}

	// Restoring again over the copy needs force, then replaces it.
	err = s.Apply(ctx, req, w.reader())
	if err == nil || !strings.Contains(err.Error(), "exists and holds") {
		t.Fatalf("restore over existing tables without force: %v", err)
	}
	req.Options["force"] = "true"
	if err := s.Apply(ctx, req, w.reader()); err != nil {
		t.Fatal(err)
	}
	if got := one(t, c, "SELECT COUNT(*) FROM shop_copy.ledger"); got != n {
		t.Fatalf("after a forced restore: %s rows, want %s", got, n)
	}
	// Two databases need a mapping each.
	req.Options = map[string]string{"database": "x"}
	req.SnapshotMeta = map[string]string{dump.MetaManifest: strings.Replace(meta[dump.MetaManifest], `"databases":[`, `"databases":[{"name":"other","charset":"utf8mb4","collation":"utf8mb4_general_ci","objects_item":"other:objects"},`, 1)}
	if err := s.Apply(ctx, req, w.reader()); err == nil || !strings.Contains(err.Error(), "holds 2 databases") {
		t.Fatalf("database option with two databases: %v", err)
	}
}

func TestRestoreFailureLeavesOldDataIntact(t *testing.T) {
	c := conn(t, srv)
	run(t, c,
		"CREATE DATABASE inv",
		"CREATE TABLE inv.items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO inv.items VALUES (1, 'new1'), (2, 'new2')",
		"CREATE TABLE inv.other (id INT PRIMARY KEY)",
		"INSERT INTO inv.other VALUES (1)",
		"CREATE DATABASE live",
		"CREATE TABLE live.items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO live.items VALUES (9, 'old')",
	)
	s := source(t)
	ctx := context.Background()
	inst := instance(t, s, map[string]cty.Value{"dsn": cty.StringVal(srv.DSN("")), "databases": strs("inv")})
	var w memWriter
	if err := s.Capture(ctx, inst, &w); err != nil {
		t.Fatal(err)
	}
	// Damage the second table's item: its load fails half-way.
	for _, it := range w.items {
		if it.item.Name == "inv/other" {
			it.buf.WriteString("INSERT INTO `other` (`id`) VALUES (1);\n")
		}
	}
	req := sdk.ApplyRequest{Instance: inst, SnapshotMeta: w.done.Meta, Options: map[string]string{"database": "live", "force": "true"}}

	dry := req
	dry.DryRun = true
	if err := s.Apply(ctx, dry, w.reader()); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	err := s.Apply(ctx, req, w.reader())
	if err == nil || !strings.Contains(err.Error(), "`inv`.`other`") || !strings.Contains(err.Error(), "Duplicate entry") {
		t.Fatalf("a failing load: %v", err)
	}
	if got := one(t, c, "SELECT GROUP_CONCAT(name) FROM live.items"); got != "old" {
		t.Fatalf("live.items after a failed restore: %q", got)
	}
	if got := one(t, c, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'runner\\_restore\\_%'"); got != "0" {
		t.Fatalf("%s staging databases left behind", got)
	}
}

func TestErrorsAreClearAndDistinct(t *testing.T) {
	c := conn(t, srv)
	run(t, c,
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE TABLE app.audit_log (id INT PRIMARY KEY)",
		"CREATE VIEW app.recent AS SELECT id FROM app.audit_log",
		"CREATE USER 'reader'@'%' IDENTIFIED BY 'readerpw'",
		"GRANT SELECT, SHOW VIEW ON *.* TO 'reader'@'%'",
		"CREATE USER 'reloader'@'%' IDENTIFIED BY 'reloaderpw'",
		"GRANT SELECT, SHOW VIEW, RELOAD ON *.* TO 'reloader'@'%'",
	)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s := source(t)
	cases := []struct {
		name  string
		attrs map[string]cty.Value
		want  []string
	}{
		{"wrong password", map[string]cty.Value{"host": cty.StringVal("127.0.0.1"), "port": cty.NumberIntVal(int64(srv.Port)), "user": cty.StringVal("reader"), "password_file": cty.StringVal(passwordFile(t, "nope", 0o600))},
			[]string{"refused user \"reader\"", "access denied"}},
		{"unreachable host", map[string]cty.Value{"host": cty.StringVal("127.0.0.1"), "port": cty.NumberIntVal(int64(closedPort)), "user": cty.StringVal("root")},
			[]string{"cannot reach MySQL server at 127.0.0.1:" + strconv.Itoa(closedPort), "connection refused"}},
		{"no RELOAD", map[string]cty.Value{"host": cty.StringVal("127.0.0.1"), "port": cty.NumberIntVal(int64(srv.Port)), "user": cty.StringVal("reader"), "password_file": cty.StringVal(passwordFile(t, "readerpw", 0o600)), "parallel": cty.NumberIntVal(2), "databases": strs("app")},
			[]string{"needs RELOAD or FLUSH_TABLES for a consistent snapshot"}},
		{"no REPLICATION CLIENT", map[string]cty.Value{"host": cty.StringVal("127.0.0.1"), "port": cty.NumberIntVal(int64(srv.Port)), "user": cty.StringVal("reloader"), "password_file": cty.StringVal(passwordFile(t, "reloaderpw", 0o600)), "parallel": cty.NumberIntVal(2), "databases": strs("app")},
			[]string{"needs REPLICATION CLIENT to record the binlog position"}},
		{"a view reads an excluded table", map[string]cty.Value{"dsn": cty.StringVal(srv.DSN("")), "databases": strs("app"), "exclude_tables": strs("*.*_log")},
			[]string{"view `app`.`recent` reads table `app`.`audit_log`", "exclude the view too"}},
		{"a database that does not exist", map[string]cty.Value{"dsn": cty.StringVal(srv.DSN("")), "databases": strs("nosuch")},
			[]string{"database `nosuch` does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w memWriter
			err := s.Capture(context.Background(), instance(t, s, tc.attrs), &w)
			if err == nil {
				t.Fatal("capture succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q lacks %q", err, want)
				}
			}
			for _, pw := range []string{"nope", "readerpw", "reloaderpw"} {
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("the password is in the error: %v", err)
				}
			}
			if w.done != nil {
				t.Fatal("a failed capture called Done")
			}
		})
	}
}

func TestKillingTheServerMidDumpFailsTheCapture(t *testing.T) {
	own := mariadbtest.Start(t)
	c := conn(t, own)
	run(t, c, "CREATE DATABASE big", "CREATE TABLE big.a (id INT PRIMARY KEY, pad VARCHAR(200))", "CREATE TABLE big.b (id INT PRIMARY KEY, pad VARCHAR(200))")
	for _, tb := range []string{"a", "b"} {
		run(t, c, "INSERT INTO big."+tb+" SELECT seq, REPEAT('x', 190) FROM big.seq_1_to_30000")
	}
	s := source(t)
	inst := instance(t, s, map[string]cty.Value{"dsn": cty.StringVal(own.DSN("")), "parallel": cty.NumberIntVal(1), "chunk_size": cty.StringVal("0")})
	var once sync.Once
	w := &memWriter{onWrite: func(item string, n int) {
		if item == "big/a" && n > 0 {
			once.Do(own.Kill)
		}
	}}
	err := s.Capture(context.Background(), inst, w)
	if err == nil {
		t.Fatal("the capture succeeded although the server died")
	}
	if !strings.Contains(err.Error(), "`big`.`a`") || !strings.Contains(err.Error(), "lost connection") {
		t.Fatalf("error %q does not name the table and the lost connection", err)
	}
	if w.done != nil {
		t.Fatal("Done was called: the host would record a snapshot")
	}
	last := w.items[len(w.items)-1]
	if last.err == nil {
		t.Fatalf("item %s was closed as complete", last.item.Name)
	}
}
