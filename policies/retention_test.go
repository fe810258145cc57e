package policies

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// snapID names a test snapshot after its time, so that expectations read
// as dates.
func snapID(t time.Time) string { return t.Format("2006-01-02T15:04") }

// series returns n snapshots, the first at start, each step after the
// previous one (calendar days when days > 0, otherwise the clock step).
func series(start time.Time, n, days int, step time.Duration) []SnapshotInfo {
	var out []SnapshotInfo
	t := start
	for range n {
		out = append(out, SnapshotInfo{ID: snapID(t), Time: t})
		if days > 0 {
			t = t.AddDate(0, 0, days)
		} else {
			t = t.Add(step)
		}
	}
	return out
}

// snapsAt returns one snapshot per "2006-01-02 15:04" time in loc.
func snapsAt(t testing.TB, loc *time.Location, times ...string) []SnapshotInfo {
	t.Helper()
	var out []SnapshotInfo
	for _, s := range times {
		v := at(t, loc, s)
		out = append(out, SnapshotInfo{ID: snapID(v), Time: v})
	}
	return out
}

func keptIDs(ds []Decision) []string {
	var ids []string
	for _, d := range ds {
		if d.Keep {
			ids = append(ids, d.Snapshot.ID)
		}
	}
	return ids
}

func forgotIDs(ds []Decision) []string {
	var ids []string
	for _, d := range ds {
		if !d.Keep {
			ids = append(ids, d.Snapshot.ID)
		}
	}
	return ids
}

func byID(ds []Decision, id string) Decision {
	for _, d := range ds {
		if d.Snapshot.ID == id {
			return d
		}
	}
	return Decision{}
}

func dur(s string) *Duration { d := MustParseDuration(s); return &d }

func TestRetentionKeepRules(t *testing.T) {
	utc := time.UTC
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name  string
		r     Retention
		snaps []SnapshotInfo
		now   time.Time
		want  []string // kept, oldest first
	}{
		{
			name:  "daily 7 over 30 daily snapshots keeps exactly the 7 newest days",
			r:     Retention{KeepDaily: 7},
			snaps: series(at(t, utc, "2026-10-22 03:00"), 30, 1, 0),
			now:   at(t, utc, "2026-11-20 12:00"),
			want: []string{"2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00", "2026-11-17T03:00",
				"2026-11-18T03:00", "2026-11-19T03:00", "2026-11-20T03:00"},
		},
		{
			name:  "daily keeps the newest snapshot of each day",
			r:     Retention{KeepDaily: 3},
			snaps: series(at(t, utc, "2026-11-16 01:00"), 15, 0, 8*time.Hour), // 01:00, 09:00, 17:00 for 5 days
			now:   at(t, utc, "2026-11-20 18:00"),
			want:  []string{"2026-11-18T17:00", "2026-11-19T17:00", "2026-11-20T17:00"},
		},
		{
			name:  "days without snapshots do not use up keep_daily",
			r:     Retention{KeepDaily: 4},
			snaps: snapsAt(t, utc, "2026-11-01 03:00", "2026-11-02 03:00", "2026-11-05 03:00", "2026-11-09 03:00", "2026-11-10 03:00"),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-02T03:00", "2026-11-05T03:00", "2026-11-09T03:00", "2026-11-10T03:00"},
		},
		{
			name:  "hourly keeps the newest snapshot of each hour",
			r:     Retention{KeepHourly: 3},
			snaps: series(at(t, utc, "2026-11-20 08:00"), 15, 0, 20*time.Minute), // 08:00 .. 12:40
			now:   at(t, utc, "2026-11-20 13:00"),
			want:  []string{"2026-11-20T10:40", "2026-11-20T11:40", "2026-11-20T12:40"},
		},
		{
			name:  "weekly across a year boundary counts ISO weeks, so 28 Dec to 3 Jan is one week",
			r:     Retention{KeepWeekly: 3},
			snaps: series(at(t, utc, "2026-12-20 03:00"), 18, 1, 0), // to 2027-01-06
			now:   at(t, utc, "2027-01-06 12:00"),
			want:  []string{"2026-12-27T03:00", "2027-01-03T03:00", "2027-01-06T03:00"},
		},
		{
			name:  "weekly weeks start on Monday",
			r:     Retention{KeepWeekly: 2},
			snaps: snapsAt(t, utc, "2026-11-15 03:00", "2026-11-16 03:00", "2026-11-22 03:00", "2026-11-23 03:00"), // Sun, Mon, Sun, Mon
			now:   at(t, utc, "2026-11-23 12:00"),
			want:  []string{"2026-11-22T03:00", "2026-11-23T03:00"},
		},
		{
			name:  "monthly with several snapshots a month keeps the newest of each month",
			r:     Retention{KeepMonthly: 4},
			snaps: series(at(t, utc, "2026-06-01 03:00"), 37, 5, 0), // every 5 days to 2026-11-28
			now:   at(t, utc, "2026-11-28 12:00"),
			want:  []string{"2026-08-30T03:00", "2026-09-29T03:00", "2026-10-29T03:00", "2026-11-28T03:00"},
		},
		{
			name:  "yearly keeps the newest snapshot of each year",
			r:     Retention{KeepYearly: 2},
			snaps: snapsAt(t, utc, "2024-03-01 03:00", "2024-12-31 23:00", "2025-06-01 03:00", "2025-12-31 03:00", "2026-01-01 03:00"),
			now:   at(t, utc, "2026-06-01 12:00"),
			want:  []string{"2025-12-31T03:00", "2026-01-01T03:00"},
		},
		{
			name:  "keep_last keeps the N newest whatever their times",
			r:     Retention{KeepLast: 3},
			snaps: snapsAt(t, utc, "2020-01-01 00:00", "2026-11-20 01:00", "2026-11-20 01:01", "2026-11-20 01:02"),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-20T01:00", "2026-11-20T01:01", "2026-11-20T01:02"},
		},
		{
			name:  "keep_within 1M is a calendar month: from 31 March it reaches back to 28 February",
			r:     Retention{KeepWithin: dur("1M")},
			snaps: series(at(t, utc, "2026-02-26 12:00"), 5, 1, 0),
			now:   at(t, utc, "2026-03-31 12:00"),
			want:  []string{"2026-02-28T12:00", "2026-03-01T12:00", "2026-03-02T12:00"},
		},
		{
			name:  "keep_within includes a snapshot exactly at the boundary",
			r:     Retention{KeepWithin: dur("3d")},
			snaps: snapsAt(t, utc, "2026-11-17 11:59", "2026-11-17 12:00", "2026-11-19 12:00"),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-17T12:00", "2026-11-19T12:00"},
		},
		{
			name: "keep_tags keeps tagged snapshots of any age",
			r:    Retention{KeepLast: 1, KeepTags: []string{"release", "audit"}},
			snaps: []SnapshotInfo{
				{ID: "old-release", Time: at(t, utc, "2020-01-01 00:00"), Tags: []string{"manual", "release"}},
				{ID: "old-other", Time: at(t, utc, "2020-01-02 00:00"), Tags: []string{"manual"}},
				{ID: "audit", Time: at(t, utc, "2024-01-02 00:00"), Tags: []string{"audit"}},
				{ID: "untagged", Time: at(t, utc, "2026-11-19 00:00")},
				{ID: "newest", Time: at(t, utc, "2026-11-20 00:00")},
			},
			now:  at(t, utc, "2026-11-20 12:00"),
			want: []string{"old-release", "audit", "newest"},
		},
		{
			name: "tags match exactly, case included",
			r:    Retention{KeepTags: []string{"release"}},
			snaps: []SnapshotInfo{
				{ID: "a", Time: at(t, utc, "2026-11-18 00:00"), Tags: []string{"Release"}},
				{ID: "b", Time: at(t, utc, "2026-11-19 00:00"), Tags: []string{"released"}},
				{ID: "c", Time: at(t, utc, "2026-11-20 00:00")},
			},
			now:  at(t, utc, "2026-11-20 12:00"),
			want: []string{"c"}, // the newest, by protection
		},
		{
			name: "rules combine: a snapshot is kept if any rule keeps it",
			r:    Retention{KeepDaily: 3, KeepWeekly: 3, KeepMonthly: 2},
			// daily 03:00 from Mon 2026-10-26 to Fri 2026-11-20
			snaps: series(at(t, utc, "2026-10-26 03:00"), 26, 1, 0),
			now:   at(t, utc, "2026-11-20 12:00"),
			want: []string{
				"2026-10-31T03:00",                     // monthly #2 (2026-10)
				"2026-11-08T03:00", "2026-11-15T03:00", // weekly #3, #2 (Sundays)
				"2026-11-18T03:00", "2026-11-19T03:00", "2026-11-20T03:00", // daily
			},
		},
		{
			name:  "no keep rule at all keeps everything",
			r:     Retention{},
			snaps: series(at(t, utc, "2020-01-01 03:00"), 5, 100, 0),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2020-01-01T03:00", "2020-04-10T03:00", "2020-07-19T03:00", "2020-10-27T03:00", "2021-02-04T03:00"},
		},
		{
			name:  "max_forgets_per_run alone is no keep rule: everything is kept",
			r:     Retention{MaxForgetsPerRun: 1},
			snaps: series(at(t, utc, "2026-11-18 03:00"), 3, 1, 0),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-18T03:00", "2026-11-19T03:00", "2026-11-20T03:00"},
		},
		{
			name:  "the newest snapshot is kept even when no rule matches it",
			r:     Retention{KeepTags: []string{"release"}},
			snaps: series(at(t, utc, "2026-11-18 03:00"), 3, 1, 0),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-20T03:00"},
		},
		{
			name: "a snapshot a replica has not applied is kept even when no rule matches it",
			r:    Retention{KeepLast: 1},
			snaps: []SnapshotInfo{
				{ID: "a", Time: at(t, utc, "2026-11-18 03:00"), Unapplied: true},
				{ID: "b", Time: at(t, utc, "2026-11-19 03:00")},
				{ID: "c", Time: at(t, utc, "2026-11-20 03:00")},
			},
			now:  at(t, utc, "2026-11-20 12:00"),
			want: []string{"a", "c"},
		},
		{
			name: "days are the local days of now's location",
			r:    Retention{KeepDaily: 2},
			// 22:00Z and 23:30Z on the 19th are 23:00 on the 19th and
			// 00:30 on the 20th in Berlin.
			snaps: snapsAt(t, utc, "2026-11-18 12:00", "2026-11-19 22:00", "2026-11-19 23:30"),
			now:   at(t, berlin, "2026-11-20 12:00"),
			want:  []string{"2026-11-19T22:00", "2026-11-19T23:30"},
		},
		{
			name:  "the same snapshots with now in UTC fall on UTC days",
			r:     Retention{KeepDaily: 2},
			snaps: snapsAt(t, utc, "2026-11-18 12:00", "2026-11-19 22:00", "2026-11-19 23:30"),
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  []string{"2026-11-18T12:00", "2026-11-19T23:30"},
		},
		{
			name:  "hours repeated when the clocks go back are one hourly bucket",
			r:     Retention{KeepHourly: 2},
			snaps: snapsAt(t, utc, "2026-10-25 00:30", "2026-10-25 00:50", "2026-10-25 01:10", "2026-10-25 01:30"), // 02:30+02, 02:50+02, 02:10+01, 02:30+01 Berlin
			now:   at(t, berlin, "2026-10-25 12:00"),
			want:  []string{"2026-10-25T01:30"}, // all four are in the one wall hour 02:00: its newest
		},
		{
			name:  "no snapshots, no decisions",
			r:     Retention{KeepDaily: 7},
			snaps: nil,
			now:   at(t, utc, "2026-11-20 12:00"),
			want:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := tc.r.Decide(tc.snaps, tc.now, nil)
			if len(ds) != len(tc.snaps) {
				t.Fatalf("%d decisions for %d snapshots", len(ds), len(tc.snaps))
			}
			if got := keptIDs(ds); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v\nwant %v\n%s", got, tc.want, explain(ds))
			}
		})
	}
}

// explain renders decisions for a failure message.
func explain(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s keep=%v %s\n", d.Snapshot.ID, d.Keep, strings.Join(d.Reasons, "; "))
	}
	return b.String()
}

func TestRetentionReasonsExplainEachDecision(t *testing.T) {
	utc := time.UTC
	r := Retention{KeepLast: 1, KeepDaily: 3, KeepWeekly: 2, KeepWithin: dur("2d"), KeepTags: []string{"release"}}
	snaps := series(at(t, utc, "2026-11-01 03:00"), 20, 1, 0) // to Fri 2026-11-20
	snaps[2].Tags = []string{"release"}                       // 2026-11-03
	ds := r.Decide(snaps, at(t, utc, "2026-11-20 12:00"), nil)
	want := map[string][]string{
		"2026-11-20T03:00": {"keep: last #1", "keep: daily #1 (2026-11-20)", "keep: weekly #1 (2026-W47)",
			"keep: within 2d (since 2026-11-18T12:00)", reasonNewest},
		"2026-11-19T03:00": {"keep: daily #2 (2026-11-19)", "keep: within 2d (since 2026-11-18T12:00)"},
		"2026-11-18T03:00": {"keep: daily #3 (2026-11-18)"},
		"2026-11-15T03:00": {"keep: weekly #2 (2026-W46)"},
		"2026-11-03T03:00": {"keep: tag release"},
		"2026-11-17T03:00": {"forget: no keep rule matches"},
	}
	for id, reasons := range want {
		d := byID(ds, id)
		if !slices.Equal(d.Reasons, reasons) {
			t.Errorf("%s: reasons %q\nwant %q", id, d.Reasons, reasons)
		}
		if d.Keep != strings.HasPrefix(d.Reason(), "keep:") {
			t.Errorf("%s: Keep=%v but the deciding reason is %q", id, d.Keep, d.Reason())
		}
	}
}

func TestRetentionOutputIsOldestFirstWithTiesByID(t *testing.T) {
	ts := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	snaps := []SnapshotInfo{
		{ID: "c", Time: ts.Add(time.Hour)},
		{ID: "b", Time: ts},
		{ID: "a", Time: ts},
	}
	ds := Retention{KeepLast: 1}.Decide(snaps, ts.Add(2*time.Hour), nil)
	var order []string
	for _, d := range ds {
		order = append(order, d.Snapshot.ID)
	}
	if !slices.Equal(order, []string{"a", "b", "c"}) {
		t.Errorf("order %v, want [a b c]", order)
	}
	// Of two snapshots at the same time, the one with the larger ID counts
	// as the newer.
	ds = Retention{KeepLast: 1}.Decide(snaps[1:], ts.Add(2*time.Hour), nil)
	if got := keptIDs(ds); !slices.Equal(got, []string{"b"}) {
		t.Errorf("kept %v, want [b]", got)
	}
}

// blobModel is a deduplicated repository in miniature: each snapshot
// references blobs, and the space a set of snapshots holds is the size of
// the union of their blobs.
type blobModel struct {
	size map[string]int64    // blob -> bytes
	refs map[string][]string // snapshot -> blobs
	// calls counts SizeOf calls.
	calls int
}

func (m *blobModel) SizeOf(ids []string) int64 {
	m.calls++
	seen := map[string]bool{}
	var n int64
	for _, id := range ids {
		for _, b := range m.refs[id] {
			if !seen[b] {
				seen[b] = true
				n += m.size[b]
			}
		}
	}
	return n
}

func TestRetentionQuota(t *testing.T) {
	utc := time.UTC
	now := at(t, utc, "2026-11-20 12:00")
	const mb = 1_000_000
	tenDays := func(size int64) []SnapshotInfo { // 2026-11-11 .. 2026-11-20
		s := series(at(t, utc, "2026-11-11 03:00"), 10, 1, 0)
		for i := range s {
			s[i].Size = size
		}
		return s
	}
	tests := []struct {
		name        string
		r           Retention
		snaps       []SnapshotInfo
		sizes       *blobModel // nil: sum of Size
		wantForgot  []string
		wantReasons map[string][]string
	}{
		{
			name:       "a quota-only policy forgets the oldest until the rest fit",
			r:          Retention{MaxSize: 550 * mb},
			snaps:      tenDays(100 * mb),
			wantForgot: []string{"2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00"},
			wantReasons: map[string][]string{
				"2026-11-11T03:00": {reasonNoRules, "forget: over quota 1000 MB > 550 MB, oldest first"},
				"2026-11-16T03:00": {reasonNoRules},
			},
		},
		{
			name:        "within quota nothing more is forgotten",
			r:           Retention{MaxSize: 1000 * mb},
			snaps:       tenDays(100 * mb),
			wantForgot:  nil,
			wantReasons: map[string][]string{"2026-11-20T03:00": {reasonNoRules, reasonNewest}},
		},
		{
			name:       "snapshots beyond the keep rules go first: if that is enough, kept ones stay",
			r:          Retention{KeepLast: 4, MaxSize: 400 * mb},
			snaps:      tenDays(100 * mb),
			wantForgot: []string{"2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00"},
		},
		{
			name:       "then the oldest kept ones go",
			r:          Retention{KeepLast: 4, MaxSize: 250 * mb},
			snaps:      tenDays(100 * mb),
			wantForgot: []string{"2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00", "2026-11-17T03:00", "2026-11-18T03:00"},
			wantReasons: map[string][]string{
				"2026-11-17T03:00": {"keep: last #4", "forget: over quota 400 MB > 250 MB, oldest first"},
				"2026-11-19T03:00": {"keep: last #2"},
			},
		},
		{
			name:       "the newest snapshot is never forgotten, even alone over the quota",
			r:          Retention{KeepLast: 4, MaxSize: 50 * mb},
			snaps:      tenDays(100 * mb),
			wantForgot: []string{"2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00", "2026-11-17T03:00", "2026-11-18T03:00", "2026-11-19T03:00"},
			wantReasons: map[string][]string{
				"2026-11-20T03:00": {"keep: last #1", reasonNewest, "keep: still over quota 100 MB > 50 MB, but only protected snapshots are left"},
			},
		},
		{
			name: "a snapshot a replica has not applied is never forgotten: newer ones go instead",
			r:    Retention{MaxSize: 450 * mb},
			snaps: func() []SnapshotInfo {
				s := tenDays(100 * mb)
				s[0].Unapplied = true
				return s
			}(),
			wantForgot: []string{"2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00", "2026-11-17T03:00"},
			wantReasons: map[string][]string{
				"2026-11-11T03:00": {reasonNoRules, reasonUnapplied},
			},
		},
		{
			name: "unique data is not additive: forgetting what shares data frees it together",
			r:    Retention{MaxSize: 300},
			snaps: []SnapshotInfo{
				// Size is what each holds alone: their sum (220) fits the
				// quota, but together they hold 720.
				{ID: "A", Time: at(t, utc, "2026-11-17 03:00"), Size: 10},
				{ID: "B", Time: at(t, utc, "2026-11-18 03:00"), Size: 10},
				{ID: "C", Time: at(t, utc, "2026-11-19 03:00"), Size: 100},
				{ID: "D", Time: at(t, utc, "2026-11-20 03:00"), Size: 100},
			},
			sizes: &blobModel{
				size: map[string]int64{"x": 500, "a": 10, "b": 10, "c": 100, "d": 100},
				refs: map[string][]string{"A": {"x", "a"}, "B": {"x", "b"}, "C": {"c"}, "D": {"d"}},
			},
			wantForgot: []string{"A", "B"},
			wantReasons: map[string][]string{
				"A": {reasonNoRules, "forget: over quota 720 B > 300 B, oldest first"},
				"B": {reasonNoRules, "forget: over quota 720 B > 300 B, oldest first"},
			},
		},
		{
			name:       "the reason gives usage and quota in the quota's unit",
			r:          Retention{KeepLast: 2, MaxSize: 1000 * mb},
			snaps:      []SnapshotInfo{{ID: "old", Time: at(t, utc, "2026-11-19 03:00"), Size: 210 * mb}, {ID: "new", Time: at(t, utc, "2026-11-20 03:00"), Size: 1000 * mb}},
			wantForgot: []string{"old"},
			wantReasons: map[string][]string{
				"old": {"keep: last #2", "forget: over quota 1210 MB > 1000 MB, oldest first"},
				"new": {"keep: last #1", reasonNewest},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sizeOf SizeOf
			if tc.sizes != nil {
				sizeOf = tc.sizes.SizeOf
			}
			ds := tc.r.Decide(tc.snaps, now, sizeOf)
			if got := forgotIDs(ds); !slices.Equal(got, tc.wantForgot) {
				t.Errorf("forgot %v\nwant   %v\n%s", got, tc.wantForgot, explain(ds))
			}
			for id, reasons := range tc.wantReasons {
				if got := byID(ds, id).Reasons; !slices.Equal(got, reasons) {
					t.Errorf("%s: reasons %q\nwant %q", id, got, reasons)
				}
			}
		})
	}
}

func TestQuotaSizesReadLikeTheQuota(t *testing.T) {
	tests := []struct {
		usage, quota int64
		want         string
	}{
		{1_210_000_000, 1_000_000_000, "1210 MB > 1000 MB"},
		{2_500_000_000_000, 2_000_000_000_000, "2500 GB > 2000 GB"},
		{1_234_567, 1_000_000, "1234.6 KB > 1000 KB"},
		{720, 300, "720 B > 300 B"},
		{1_000_000_001, 1_000_000_000, "1000000001 B > 1000000000 B"}, // would round to equal
	}
	for _, tc := range tests {
		u, q := quotaSizes(tc.usage, tc.quota)
		if got := u + " > " + q; got != tc.want {
			t.Errorf("quotaSizes(%d, %d) = %q, want %q", tc.usage, tc.quota, got, tc.want)
		}
	}
}

func TestRetentionQuotaAsksSizeOfOnlyLogarithmicallyOften(t *testing.T) {
	// 1000 snapshots of 1 MB each, a quota of 10 MB: a linear walk would
	// ask the repository index ~990 times.
	m := &blobModel{size: map[string]int64{}, refs: map[string][]string{}}
	snaps := series(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 1000, 0, time.Hour)
	for _, s := range snaps {
		m.size[s.ID] = 1e6
		m.refs[s.ID] = []string{s.ID}
	}
	ds := Retention{MaxSize: 10e6}.Decide(snaps, snaps[999].Time, m.SizeOf)
	if got := len(keptIDs(ds)); got != 10 {
		t.Errorf("kept %d, want 10", got)
	}
	if m.calls > 15 {
		t.Errorf("SizeOf called %d times, want O(log n)", m.calls)
	}
}

func TestRetentionMaxForgetsPerRun(t *testing.T) {
	utc := time.UTC
	now := at(t, utc, "2026-11-20 12:00")
	snaps := series(at(t, utc, "2026-11-11 03:00"), 10, 1, 0)
	capReason := "keep: max_forgets_per_run 2 reached (forget next run)"

	t.Run("only the N oldest forgets happen; the others wait and say so", func(t *testing.T) {
		ds := Retention{KeepLast: 3, MaxForgetsPerRun: 2}.Decide(snaps, now, nil)
		if got, want := forgotIDs(ds), []string{"2026-11-11T03:00", "2026-11-12T03:00"}; !slices.Equal(got, want) {
			t.Errorf("forgot %v, want %v", got, want)
		}
		if got, want := byID(ds, "2026-11-13T03:00").Reasons, []string{reasonNoMatch, capReason}; !slices.Equal(got, want) {
			t.Errorf("reasons %q, want %q", got, want)
		}
	})

	t.Run("deletions spread over runs until the policy is met", func(t *testing.T) {
		cur := snaps
		var runs [][]string
		for range 10 {
			ds := Retention{KeepLast: 3, MaxForgetsPerRun: 2}.Decide(cur, now, nil)
			f := forgotIDs(ds)
			if len(f) == 0 {
				break
			}
			runs = append(runs, f)
			cur = keep(ds)
		}
		if len(runs) != 4 || len(runs[3]) != 1 || len(cur) != 3 {
			t.Errorf("runs %v, left %d, want 2+2+2+1 forgets leaving 3", runs, len(cur))
		}
	})

	t.Run("quota forgets count against the cap too, oldest first", func(t *testing.T) {
		s := slices.Clone(snaps)
		for i := range s {
			s[i].Size = 100
		}
		ds := Retention{KeepLast: 5, MaxSize: 300, MaxForgetsPerRun: 6}.Decide(s, now, nil)
		// Rules forget 5 (11th-15th), the quota 2 more (16th, 17th): the
		// cap lets the 6 oldest go.
		if got, want := forgotIDs(ds), []string{"2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00", "2026-11-14T03:00", "2026-11-15T03:00", "2026-11-16T03:00"}; !slices.Equal(got, want) {
			t.Errorf("forgot %v, want %v\n%s", got, want, explain(ds))
		}
		want := []string{"keep: last #4", "forget: over quota 500 B > 300 B, oldest first", "keep: max_forgets_per_run 6 reached (forget next run)"}
		if got := byID(ds, "2026-11-17T03:00").Reasons; !slices.Equal(got, want) {
			t.Errorf("reasons %q, want %q", got, want)
		}
	})
}

// keep returns the snapshots the decisions keep: the repository after
// applying them.
func keep(ds []Decision) []SnapshotInfo {
	var out []SnapshotInfo
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot)
		}
	}
	return out
}

// TestRetentionProperties checks, over random snapshot histories, policies,
// repositories and time zones, what must hold whatever the rules.
func TestRetentionProperties(t *testing.T) {
	locs := []*time.Location{time.UTC, mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York"), mustLoc(t, "Australia/Lord_Howe")}
	rng := rand.New(rand.NewSource(4))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// How often the interesting cases came up, so that a change to the
	// generator cannot quietly stop testing them.
	seen := map[string]int{}
	defer func() {
		for _, c := range []string{"forget: over quota", "keep: still over quota", "keep: max_forgets_per_run", "keep: not yet applied", "forget: no keep rule"} {
			if seen[c] < 20 {
				t.Errorf("only %d random cases with %q", seen[c], c)
			}
		}
	}()
	for iter := range 2000 {
		// Snapshots: a few to a few dozen over up to two years, some at the
		// same instant, in random locations.
		n := rng.Intn(40)
		span := time.Duration(1+rng.Intn(730)) * 24 * time.Hour
		model := &blobModel{size: map[string]int64{}, refs: map[string][]string{}}
		for b := range 30 {
			model.size[fmt.Sprint("b", b)] = int64(1 + rng.Intn(1000))
		}
		var snaps []SnapshotInfo
		for i := range n {
			tm := base.Add(time.Duration(rng.Int63n(int64(span))))
			if i > 0 && rng.Intn(8) == 0 {
				tm = snaps[rng.Intn(i)].Time // a tie
			}
			s := SnapshotInfo{ID: fmt.Sprintf("s%02d", i), Time: tm.In(locs[rng.Intn(len(locs))]), Unapplied: rng.Intn(15) == 0}
			if rng.Intn(6) == 0 {
				s.Tags = []string{[]string{"release", "manual"}[rng.Intn(2)]}
			}
			for range 1 + rng.Intn(5) {
				b := fmt.Sprint("b", rng.Intn(30))
				model.refs[s.ID] = append(model.refs[s.ID], b)
			}
			s.Size = int64(rng.Intn(500))
			snaps = append(snaps, s)
		}
		small := func() int {
			if rng.Intn(2) == 0 {
				return 0
			}
			return rng.Intn(6)
		}
		r := Retention{KeepLast: small(), KeepHourly: small(), KeepDaily: small(), KeepWeekly: small(), KeepMonthly: small(), KeepYearly: small()}
		if rng.Intn(3) == 0 {
			r.KeepWithin = dur([]string{"12h", "3d", "2w", "1M", "1y"}[rng.Intn(5)])
		}
		if rng.Intn(4) == 0 {
			r.KeepTags = []string{"release"}
		}
		if rng.Intn(2) == 0 {
			r.MaxSize = int64(rng.Intn(8000))
		}
		var sizeOf SizeOf
		if rng.Intn(3) != 0 {
			sizeOf = model.SizeOf
		}
		usage := func(ss []SnapshotInfo) int64 {
			if sizeOf != nil {
				ids := make([]string, len(ss))
				for i, s := range ss {
					ids[i] = s.ID
				}
				return sizeOf(ids)
			}
			var sum int64
			for _, s := range ss {
				sum += s.Size
			}
			return sum
		}
		now := base.Add(span + time.Duration(rng.Int63n(int64(60*24*time.Hour)))).In(locs[rng.Intn(len(locs))])
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d, %+v, now %s: %s\n%s", iter, r, now, fmt.Sprintf(format, args...), explain(r.Decide(snaps, now, sizeOf)))
		}

		ds := r.Decide(snaps, now, sizeOf)
		if len(ds) != n {
			fail("%d decisions for %d snapshots", len(ds), n)
		}

		for _, d := range ds {
			for _, reason := range d.Reasons {
				for _, c := range []string{"forget: over quota", "keep: still over quota", "keep: not yet applied", "forget: no keep rule"} {
					if strings.HasPrefix(reason, c) {
						seen[c]++
					}
				}
			}
		}

		// The output is in time order and every decision explains itself.
		if !sort.SliceIsSorted(ds, func(i, j int) bool { return ds[i].Snapshot.Time.Before(ds[j].Snapshot.Time) }) {
			fail("decisions not oldest first")
		}
		for _, d := range ds {
			if d.Keep != strings.HasPrefix(d.Reason(), "keep:") || (!d.Keep && !strings.HasPrefix(d.Reason(), "forget:")) {
				fail("%s: Keep=%v but deciding reason %q", d.Snapshot.ID, d.Keep, d.Reason())
			}
		}

		// The newest snapshot always survives, and so does every snapshot a
		// replica has not applied.
		if n > 0 && !ds[n-1].Keep {
			fail("the newest snapshot %s was forgotten", ds[n-1].Snapshot.ID)
		}
		for _, d := range ds {
			if d.Snapshot.Unapplied && !d.Keep {
				fail("unapplied %s was forgotten", d.Snapshot.ID)
			}
		}

		// After forgetting, the kept set fits the quota unless only
		// protected snapshots are left.
		kept := keep(ds)
		if r.MaxSize > 0 && usage(kept) > r.MaxSize {
			for i, d := range ds {
				if d.Keep && i != n-1 && !d.Snapshot.Unapplied {
					fail("over quota (%d > %d) while %s, not protected, is kept", usage(kept), r.MaxSize, d.Snapshot.ID)
				}
			}
		}

		// Deciding again on what is left, at the same time, forgets nothing.
		for _, d := range r.Decide(kept, now, sizeOf) {
			if !d.Keep {
				fail("not idempotent: a second run forgets %s (%s)", d.Snapshot.ID, strings.Join(d.Reasons, "; "))
			}
		}

		// The input order does not matter.
		shuffled := slices.Clone(snaps)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := r.Decide(shuffled, now, sizeOf); !reflect.DeepEqual(again, ds) {
			fail("decisions depend on the input order")
		}

		// A cap on forgets lets exactly the oldest of them happen and keeps
		// everything else as it was.
		capped := r
		capped.MaxForgetsPerRun = 1 + rng.Intn(4)
		cds := capped.Decide(snaps, now, sizeOf)
		for _, d := range cds {
			if strings.HasPrefix(d.Reason(), "keep: max_forgets_per_run") {
				seen["keep: max_forgets_per_run"]++
			}
		}
		allowed := forgotIDs(ds)
		allowed = allowed[:min(len(allowed), capped.MaxForgetsPerRun)]
		if got := forgotIDs(cds); !slices.Equal(got, allowed) {
			fail("with max_forgets_per_run %d forgot %v, want the oldest forgets %v", capped.MaxForgetsPerRun, got, allowed)
		}
	}
}
