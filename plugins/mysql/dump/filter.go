package dump

import (
	"fmt"
	"slices"
	"strings"
)

// SystemDatabases are never dumped unless named in Filter.Databases.
var SystemDatabases = []string{"mysql", "information_schema", "performance_schema", "sys"}

// Filter selects what a dump holds.
//
// Table patterns are globs matched against "database.table": '*' matches
// any run of characters (dots included), '?' one character, and '\'
// escapes the next one. A pattern without a '.' matches the table name in
// every database, so "wp_sessions" and "*.wp_sessions" mean the same.
// Matching is case-sensitive, as table names are on Linux.
type Filter struct {
	// Databases to dump; empty means every database but the system ones.
	Databases []string
	// IncludeTables: when not empty, only tables matching one of these.
	IncludeTables []string
	// ExcludeTables: tables matching one of these are left out (they win
	// over IncludeTables). A view that reads an excluded table is an
	// error: it would not load without the table.
	ExcludeTables []string
}

// Check reports a malformed pattern.
func (f Filter) Check() error {
	for _, list := range [][]string{f.IncludeTables, f.ExcludeTables} {
		for _, p := range list {
			if p == "" {
				return fmt.Errorf("empty table pattern")
			}
			if strings.HasSuffix(p, `\`) && !strings.HasSuffix(p, `\\`) {
				return fmt.Errorf("table pattern %q ends in a lone backslash", p)
			}
		}
	}
	for _, d := range f.Databases {
		if d == "" {
			return fmt.Errorf("empty database name")
		}
	}
	return nil
}

// Database reports whether database db is selected.
func (f Filter) Database(db string) bool {
	if len(f.Databases) > 0 {
		return slices.Contains(f.Databases, db)
	}
	return !slices.Contains(SystemDatabases, db)
}

// Table reports whether table db.table is selected (its database must be
// selected too).
func (f Filter) Table(db, table string) bool {
	if !f.Database(db) {
		return false
	}
	if f.excluded(db, table) {
		return false
	}
	if len(f.IncludeTables) == 0 {
		return true
	}
	return matchAny(f.IncludeTables, db, table)
}

func (f Filter) excluded(db, table string) bool {
	return matchAny(f.ExcludeTables, db, table)
}

func matchAny(patterns []string, db, table string) bool {
	full := db + "." + table
	for _, p := range patterns {
		if !strings.Contains(strings.ReplaceAll(p, `\.`, ""), ".") {
			if glob(p, table) {
				return true
			}
			continue
		}
		if glob(p, full) {
			return true
		}
	}
	return false
}

// glob matches s against a pattern of '*', '?' and '\'-escaped bytes.
func glob(p, s string) bool {
	// Iterative matcher with backtracking to the last star.
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '\\':
				if px+1 < len(p) && p[px+1] == s[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP >= 0 {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}
