package dump

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestInsertsBecomeLoadDataRows(t *testing.T) {
	tests := []struct {
		name, values, want string
		ok                 bool
	}{
		{"numbers and NULL", "(1,-2.5e-10,NULL),(18446744073709551615,0,+3)", "1\t-2.5e-10\t\\N\n18446744073709551615\t0\t+3\n", true},
		{"quoted strings keep the escapes LOAD DATA shares", `('a\0b\nc\rd\Ze\\f','x\'y\"z','')`, "a\\0b\\nc\\rd\\Ze\\\\f\tx'y\"z\t\n", true},
		{"a raw tab is escaped", "('a\tb','c','d')", "a\\tb\tc\td\n", true},
		{"hex becomes escaped bytes", "(0x00095C0A41,X'',0x4e)", "\\0\\t\\\\\\nA\t\tN\n", true},
		{"the word NULL in quotes is text", "('NULL','\\\\N','N')", "NULL\t\\\\N\tN\n", true},
		{"an escape Dump never writes falls back", `('a\%b','c','d')`, "", false},
		{"a doubled quote falls back", "('a''b','c','d')", "", false},
		{"an expression falls back", "(NOW(),'c','d')", "", false},
		{"too few values fall back", "(1,2)", "", false},
		{"an odd number of hex digits falls back", "(0xABC,1,2)", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := appendInfileRows(nil, []byte(tc.values), 3, make([]bool, 3))
			if ok != tc.ok || ok && string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	table, cols, values, ok := parseInsert([]byte("INSERT INTO `we``ird` (`a`,`b c`) VALUES (1,2)"))
	if !ok || string(table) != "`we``ird`" || len(cols) != 2 || string(cols[1]) != "`b c`" || string(values) != "(1,2)" {
		t.Fatalf("parseInsert: %q %q %q %v", table, cols, values, ok)
	}
	intro := make([]bool, 2)
	if _, _, ok := appendInfileRows(nil, []byte(`(1,_utf8mb4'{\"a\": 1}')`), 2, intro); !ok || !intro[1] || intro[0] {
		t.Fatalf("introducer: ok %v, intro %v", ok, intro)
	}
}

// Both ways of loading rows (LOAD DATA converted from the INSERTs, and
// the INSERTs themselves) restore the same bytes, across several batches
// and with types LOAD DATA treats specially.
func TestLoadDataAndInsertsRestoreTheSameRows(t *testing.T) {
	stmts := []string{
		"CREATE DATABASE ld CHARACTER SET utf8mb4",
		"CREATE TABLE ld.t (id INT PRIMARY KEY, g GEOMETRY, p POINT, b BIT(64), bl LONGBLOB, txt TEXT, KEY (txt(10)))",
		"INSERT INTO ld.t VALUES (1, ST_GeomFromText('LINESTRING(0 0, 1 1)'), POINT(1, 2), b'1000000000000000000000000000000000000000000000000000000000001001', 0x0009000A5C0D4E, 'tab\there\\N')",
		"INSERT INTO ld.t VALUES (2, NULL, NULL, 0, '', '\\\\N')",
	}
	// Rows enough for several LOAD DATA batches, with tabs and NULs.
	big := strings.Repeat("x\t\x00y", 1<<9)
	for i := 0; i < 4; i++ {
		var b strings.Builder
		b.WriteString("INSERT INTO ld.t (id, txt, bl) VALUES ")
		for j := 0; j < 1000; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			id := 100 + i*1000 + j
			fmt.Fprintf(&b, "(%d, %s, %s)", id, quoteString(fmt.Sprintf("%d %s", id, big)), quoteString(big))
		}
		stmts = append(stmts, b.String())
	}
	sqlExec(t, append(stmts, "ANALYZE TABLE ld.t")...)
	ctx := context.Background()
	var sink memSink
	res, err := Dump(ctx, Config{Conn: rootConn(), Filter: Filter{Databases: []string{"ld"}}, Parallel: 2, ChunkBytes: 2 << 20}, sink.sink)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Manifest.Tables[0].Items); n < 2 {
		t.Fatalf("want the table split into parts, got %d", n)
	}
	loads := func() int {
		r := sqlRows(t, "SHOW GLOBAL STATUS LIKE 'Com_load'")
		var n int
		fmt.Sscan(r[0][1], &n)
		return n
	}
	for _, insertOnly := range []bool{false, true} {
		to := fmt.Sprintf("ld_%v", insertOnly)
		before := loads()
		lr, err := Load(ctx, LoadConfig{Conn: rootConn(), Parallel: 3, Manifest: &res.Manifest, Target: map[string]string{"ld": to}, InsertOnly: insertOnly}, sink.source())
		if err != nil {
			t.Fatalf("insert only %v: %v", insertOnly, err)
		}
		if lr.Verified != 1 || lr.Rows != 4002 {
			t.Fatalf("insert only %v: %+v", insertOnly, lr)
		}
		if used := loads() > before; used == insertOnly {
			t.Fatalf("insert only %v: LOAD DATA used: %v", insertOnly, used)
		}
		if a, b := tableDump(t, "ld", "t"), tableDump(t, to, "t"); a != b {
			t.Fatalf("insert only %v: the table differs", insertOnly)
		}
	}
}
