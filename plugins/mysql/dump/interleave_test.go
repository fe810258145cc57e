package dump

import (
	"fmt"
	"testing"
)

// interleaveParts keeps each table's parts in order with part 1 first,
// starts with the largest table, and spreads a large table over the whole
// order instead of leaving its parts to the end.
func TestInterleaveParts(t *testing.T) {
	tables := []struct {
		name  string
		parts int
		bytes int64
	}{{"a_small", 1, 1 << 20}, {"b_big", 10, 640 << 20}, {"c_mid", 3, 190 << 20}, {"d_tiny", 1, 1 << 10}}
	var units []*unit
	for _, tb := range tables {
		ti := &tableInfo{name: tb.name, dataBytes: tb.bytes}
		for p := 1; p <= tb.parts; p++ {
			units = append(units, &unit{kind: KindTable, t: ti, part: p, parts: tb.parts, item: Item{Name: itemName("db", tb.name, p)}})
		}
	}
	interleaveParts(units)

	var order []string
	next := map[string]int{}
	lastBig, longestRun, run := -1, 0, 0
	for i, u := range units {
		order = append(order, fmt.Sprintf("%s:%d", u.t.name, u.part))
		next[u.t.name]++
		if u.part != next[u.t.name] {
			t.Fatalf("%s part %d at position %d, expected part %d: %v", u.t.name, u.part, i, next[u.t.name], order)
		}
		if u.t.name == "b_big" {
			if lastBig == i-1 {
				run++
			} else {
				run = 1
			}
			lastBig = i
			longestRun = max(longestRun, run)
		}
	}
	if len(units) != 15 {
		t.Fatalf("%d units, want 15", len(units))
	}
	if units[0].t.name != "b_big" {
		t.Errorf("the largest table does not start the dump: %v", order)
	}
	// b_big is 10 of the 15 parts: an even spread has it at most three in
	// a row, and its last part near the end.
	if longestRun > 3 || lastBig < len(units)-2 {
		t.Errorf("b_big is not spread over the dump (longest run %d, last at %d): %v", longestRun, lastBig, order)
	}
}
