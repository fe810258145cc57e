package dump

import (
	"context"
	"strings"
	"testing"
)

// A restore whose loaded rows do not match what the dump recorded (here
// the manifest is altered, as if the stored rows had lost one or changed)
// fails, names the table and what differed, and leaves the target as it
// was: the data stays in staging, which is dropped.
func TestVerificationFailureLeavesTheTargetUntouched(t *testing.T) {
	sqlExec(t,
		"CREATE DATABASE vf",
		"CREATE TABLE vf.a (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO vf.a VALUES (1, 'x'), (2, 'y')",
		"CREATE TABLE vf.b (id INT PRIMARY KEY)",
		"INSERT INTO vf.b VALUES (1), (2), (3)",
		"CREATE DATABASE vf2",
		"CREATE TABLE vf2.a (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO vf2.a VALUES (9, 'old')",
	)
	ctx := context.Background()
	var sink memSink
	res, err := Dump(ctx, Config{Conn: rootConn(), Filter: Filter{Databases: []string{"vf"}}, Parallel: 2}, sink.sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Table)
		want   string
	}{
		{"checksum", func(tb *Table) {
			if tb.Name == "a" {
				tb.Checksum = "12345"
			}
		}, "`vf`.`a`: checksum "},
		{"rows", func(tb *Table) {
			if tb.Name == "b" {
				tb.Rows = 4
			}
		}, "`vf`.`b`: 3 rows loaded, the dump recorded 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeManifest(res.Manifest.Encode())
			if err != nil {
				t.Fatal(err)
			}
			for i := range m.Tables {
				if m.Tables[i].Checksum == "" {
					t.Fatalf("table %s has no checksum recorded", m.Tables[i].Name)
				}
				tc.change(&m.Tables[i])
			}
			_, err = Load(ctx, LoadConfig{Conn: rootConn(), Parallel: 2, Manifest: m, Target: map[string]string{"vf": "vf2"}, Force: true}, sink.source())
			if err == nil || !strings.Contains(err.Error(), "verification failed, the target was left untouched") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("load: %v, want a verification failure naming %q", err, tc.want)
			}
			if got := sqlRows(t, "SELECT id, v FROM vf2.a"); len(got) != 1 || got[0][0] != "9" || got[0][1] != "old" {
				t.Fatalf("target changed: %q", got)
			}
			if got := sqlRows(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'vf2'"); got[0][0] != "1" {
				t.Fatalf("target has %s tables, want its 1", got[0][0])
			}
			if got := sqlRows(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'runner_restore_%'"); got[0][0] != "0" {
				t.Fatalf("staging databases left: %q", got)
			}
		})
	}
}
