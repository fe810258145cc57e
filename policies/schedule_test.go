package policies

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at parses "2006-01-02 15:04" (optionally with ":05") in loc.
func at(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	layout := "2006-01-02 15:04"
	if strings.Count(s, ":") == 2 {
		layout += ":05"
	}
	v, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestScheduleNext(t *testing.T) {
	utc := time.UTC
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name  string
		sched string
		loc   *time.Location
		after string
		want  string // in loc; "+02"/"+01" suffix disambiguates repeated wall times
	}{
		{"daily runs later the same day", "daily 03:00", utc, "2024-05-10 02:59", "2024-05-10 03:00"},
		{"daily is strictly after", "daily 03:00", utc, "2024-05-10 03:00", "2024-05-11 03:00"},
		{"daily with seconds past the slot", "daily 03:00", utc, "2024-05-10 03:00:01", "2024-05-11 03:00"},
		{"daily accepts H:MM", "daily 3:05", utc, "2024-05-10 04:00", "2024-05-11 03:05"},
		{"daily follows the wall clock of the location", "daily 03:00", berlin, "2024-07-01 00:00", "2024-07-01 03:00"},
		{"a skipped wall time runs when the clocks jump", "daily 02:30", berlin, "2024-03-31 01:00", "2024-03-31 03:00"},
		{"after the jump, the normal time again", "daily 02:30", berlin, "2024-03-31 03:00", "2024-04-01 02:30"},
		{"a repeated wall time runs once, the first time", "daily 02:30", berlin, "2024-10-27 00:00", "2024-10-27 02:30 +02"},
		{"the second occurrence is skipped", "daily 02:30", berlin, "2024-10-27 02:30 +02", "2024-10-28 02:30"},
		{"weekly runs on the named day", "weekly mon 03:00", utc, "2024-05-10 12:00", "2024-05-13 03:00"},
		{"weekly with full day name", "weekly Sunday 04:00", utc, "2024-05-10 12:00", "2024-05-12 04:00"},
		{"weekly with several days", "weekly mon,thu 03:00", utc, "2024-05-13 04:00", "2024-05-16 03:00"},
		{"monthly on an existing day", "monthly 15 03:00", utc, "2024-05-10 00:00", "2024-05-15 03:00"},
		{"monthly 31 in February runs on its last day", "monthly 31 03:00", utc, "2024-02-01 00:00", "2024-02-29 03:00"},
		{"monthly 31 in April runs on the 30th", "monthly 31 03:00", utc, "2024-04-15 00:00", "2024-04-30 03:00"},
		{"monthly after this month's run", "monthly 31 03:00", utc, "2024-01-31 03:00", "2024-02-29 03:00"},
		{"monthly over the year end", "monthly 1 00:00", utc, "2024-12-01 00:00", "2025-01-01 00:00"},
		{"hourly at a minute", "hourly :15", utc, "2024-05-10 10:15", "2024-05-10 11:15"},
		{"hourly defaults to :00", "hourly", utc, "2024-05-10 10:15", "2024-05-10 11:00"},
		{"every 6h is anchored, not relative to after", "every 6h", utc, "2024-05-10 05:17", "2024-05-10 06:00"},
		{"every 6h on a boundary is strictly after", "every 6h", utc, "2024-05-10 06:00", "2024-05-10 12:00"},
		{"every 90m", "every 90m", utc, "2024-05-10 00:00", "2024-05-10 01:30"},
		{"every 1w runs on Mondays at midnight UTC", "every 1w", utc, "2024-05-10 00:00", "2024-05-13 00:00"},
		{"every gives local times in after's location", "every 1d", berlin, "2024-07-01 12:00", "2024-07-02 02:00"},
		{"every with spaces", "every 1d 12h", utc, "2024-05-10 00:00", "2024-05-10 12:00"},
		{"cron every 15 minutes", "*/15 * * * *", utc, "2024-05-10 10:07", "2024-05-10 10:15"},
		{"cron minute list", "5,35 * * * *", utc, "2024-05-10 10:06", "2024-05-10 10:35"},
		{"cron weekdays only", "0 9 * * mon-fri", utc, "2024-05-10 09:00", "2024-05-13 09:00"},
		{"cron both day fields restricted is OR: the 1st", "0 0 1 * mon", utc, "2024-05-27 00:00", "2024-06-01 00:00"},
		{"cron both day fields restricted is OR: a Monday", "0 0 1 * mon", utc, "2024-05-01 00:00", "2024-05-06 00:00"},
		{"cron day of month with star weekday is AND", "0 0 13 * *", utc, "2024-05-01 00:00", "2024-05-13 00:00"},
		{"cron weekday step restricts (not star)", "0 0 13 * */7", utc, "2024-05-01 00:00", "2024-05-05 00:00"},
		{"cron 7 is Sunday", "0 0 * * 7", utc, "2024-05-10 00:00", "2024-05-12 00:00"},
		{"cron range ending in sun", "0 0 * * fri-sun", utc, "2024-05-11 00:00", "2024-05-12 00:00"},
		{"cron month names", "0 12 1 jul *", utc, "2024-07-01 12:00", "2025-07-01 12:00"},
		{"cron 29 February waits for a leap year", "0 0 29 2 *", utc, "2024-03-01 00:00", "2028-02-29 00:00"},
		{"cron N/step runs from N to the end", "10/20 * * * *", utc, "2024-05-10 10:51", "2024-05-10 11:10"},
		{"cron range with step", "0 8-18/5 * * *", utc, "2024-05-10 14:00", "2024-05-10 18:00"},
		{"cron hours across the jump", "*/30 * * * *", berlin, "2024-03-31 01:45", "2024-03-31 03:00"},
		{"cron after the jump", "*/30 * * * *", berlin, "2024-03-31 03:00", "2024-03-31 03:30"},
		{"@daily", "@daily", utc, "2024-05-10 10:00", "2024-05-11 00:00"},
		{"@weekly is Sunday midnight", "@weekly", utc, "2024-05-10 10:00", "2024-05-12 00:00"},
		{"@monthly", "@monthly", utc, "2024-05-10 10:00", "2024-06-01 00:00"},
		{"@yearly", "@yearly", utc, "2024-05-10 10:00", "2025-01-01 00:00"},
		{"@hourly", "@hourly", utc, "2024-05-10 10:00", "2024-05-10 11:00"},
		{"keywords are case-insensitive", "DAILY 03:00", utc, "2024-05-10 00:00", "2024-05-10 03:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(tt.sched)
			if err != nil {
				t.Fatal(err)
			}
			after := parseWithOffset(t, tt.loc, tt.after)
			want := parseWithOffset(t, tt.loc, tt.want)
			got := s.Next(after)
			if !got.Equal(want) {
				t.Fatalf("%s.Next(%v) = %v, want %v", s, after, got, want)
			}
			if got.Location() != tt.loc {
				t.Fatalf("Next returned location %v, want %v", got.Location(), tt.loc)
			}
		})
	}
}

// parseWithOffset parses at()'s format with an optional " +02" to pick one
// of two instants with the same wall clock.
func parseWithOffset(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	wall, off, ok := strings.Cut(s, " +")
	if !ok {
		return at(t, loc, s)
	}
	v, err := time.Parse("2006-01-02 15:04 -07", wall+" +"+off)
	if err != nil {
		t.Fatal(err)
	}
	return v.In(loc)
}

func TestSchedulePrev(t *testing.T) {
	utc := time.UTC
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name, sched string
		loc         *time.Location
		t, want     string
	}{
		{"daily at the slot is the slot", "daily 03:00", utc, "2024-05-10 03:00", "2024-05-10 03:00"},
		{"daily just before is yesterday", "daily 03:00", utc, "2024-05-10 02:59", "2024-05-09 03:00"},
		{"monthly 31 before March is end of February", "monthly 31 03:00", utc, "2024-03-15 00:00", "2024-02-29 03:00"},
		{"monthly on the last day itself", "monthly 31 03:00", utc, "2024-04-30 03:00", "2024-04-30 03:00"},
		{"every is anchored", "every 6h", utc, "2024-05-10 05:59", "2024-05-10 00:00"},
		{"every at a boundary", "every 6h", utc, "2024-05-10 06:00", "2024-05-10 06:00"},
		{"weekly", "weekly mon 03:00", utc, "2024-05-12 12:00", "2024-05-06 03:00"},
		{"cron OR semantics", "0 0 1 * mon", utc, "2024-06-02 12:00", "2024-06-01 00:00"},
		{"a skipped wall time counts at the jump", "daily 02:30", berlin, "2024-03-31 03:10", "2024-03-31 03:00"},
		{"a repeated wall time counts once", "daily 02:30", berlin, "2024-10-27 02:45 +01", "2024-10-27 02:30 +02"},
		{"29 February four years back", "0 0 29 2 *", utc, "2028-02-28 00:00", "2024-02-29 00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustParseSchedule(tt.sched)
			in := parseWithOffset(t, tt.loc, tt.t)
			want := parseWithOffset(t, tt.loc, tt.want)
			if got := s.Prev(in); !got.Equal(want) {
				t.Fatalf("%s.Prev(%v) = %v, want %v", s, in, got, want)
			}
		})
	}
}

func TestScheduleStringIsCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"daily 3:00", "daily 03:00"},
		{"Weekly SUNDAY 3:00", "weekly sun 03:00"},
		{"weekly thu,mon 03:00", "weekly mon,thu 03:00"},
		{"monthly 31 3:30", "monthly 31 03:30"},
		{"hourly", "hourly :00"},
		{"hourly 5", "hourly :05"},
		{"every 90m", "every 1h30m"},
		{"every 1d 12h", "every 1d12h"},
		{"0   3 * *  *", "0 3 * * *"},
		{"@Daily", "@daily"},
	}
	for _, tt := range tests {
		s := MustParseSchedule(tt.in)
		if got := s.String(); got != tt.want {
			t.Errorf("ParseSchedule(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again := MustParseSchedule(s.String())
		if again.String() != s.String() {
			t.Errorf("%q does not round-trip: %q", s, again)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"hour out of range", "daily 25:00", `invalid schedule "daily 25:00": hour must be 0-23`},
		{"minute out of range", "daily 03:60", "minute must be 0-59"},
		{"daily without time", "daily", `expected "daily HH:MM"`},
		{"time without colon", "daily 0300", "time must be HH:MM"},
		{"unknown weekday", "weekly funday 03:00", `unknown day "funday"`},
		{"weekly without day", "weekly 03:00", `expected "weekly DAY HH:MM"`},
		{"day of month out of range", "monthly 32 03:00", "day of month must be 1-31"},
		{"every with calendar unit", "every 1M", "fixed interval"},
		{"every zero", "every 0s", "longer than zero"},
		{"every bad duration", "every 3x", `unknown unit "x"`},
		{"cron minute out of range", "60 * * * *", "minute must be 0-59, not 60"},
		{"cron hour out of range", "0 24 * * *", "hour must be 0-23, not 24"},
		{"cron month name", "0 0 1 foo *", `unknown month "foo"`},
		{"cron never matches", "0 0 30 2 *", "never matches"},
		{"cron zero step", "*/0 * * * *", "step must be"},
		{"cron backwards range", "0 5-1 * * *", "goes backwards"},
		{"cron empty list element", "0,,5 * * * *", "empty list element"},
		{"cron with seconds", "0 0 3 * * *", "seconds are not supported"},
		{"four fields", "0 3 * *", "5-field cron expression"},
		{"unknown shorthand", "@reboot", "unknown shorthand @reboot"},
		{"empty", "  ", "empty"},
		{"cron L is not supported", "0 0 L * *", "day of month must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchedule(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSchedule(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

// TestScheduleNextAndPrevAgree checks, for random times across daylight
// saving changes, that Next and Prev describe the same set of times: no
// scheduled time lies strictly between t and Next(t), and Prev(t) <= t <
// Next(t).
func TestScheduleNextAndPrevAgree(t *testing.T) {
	scheds := []string{"daily 02:30", "daily 00:00", "weekly sun 02:15", "monthly 31 02:30",
		"hourly :30", "every 7h", "*/20 1-3 * * *", "0 0 1 * mon", "30 2 * 3,10 sun"}
	locs := []*time.Location{time.UTC, mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York"), mustLoc(t, "Australia/Lord_Howe")}
	rng := rand.New(rand.NewSource(1))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, text := range scheds {
		s := MustParseSchedule(text)
		for _, loc := range locs {
			for i := 0; i < 300; i++ {
				tm := time.Unix(base+rng.Int63n(2*366*24*3600), 0).In(loc)
				next, prev := s.Next(tm), s.Prev(tm)
				if !next.After(tm) || prev.After(tm) {
					t.Fatalf("%s in %v at %v: prev %v, next %v", s, loc, tm, prev, next)
				}
				if p := s.Prev(next.Add(-time.Second)); p.After(tm) {
					t.Fatalf("%s in %v at %v: Next = %v but %v lies between", s, loc, tm, next, p)
				}
				if p := s.Prev(next); !p.Equal(next) {
					t.Fatalf("%s in %v: Prev(Next(%v)) = %v, want %v", s, loc, tm, p, next)
				}
				if n := s.Next(prev); !n.After(prev) || n.After(next) {
					t.Fatalf("%s in %v: Next(Prev(%v)) = %v, want in (%v, %v]", s, loc, tm, n, prev, next)
				}
			}
		}
	}
}

// TestCronMatchesBruteForce compares cron Next in UTC with a minute-by-
// minute scan that applies the field rules directly.
func TestCronMatchesBruteForce(t *testing.T) {
	exprs := []string{"*/7 */5 * * *", "0 0 1,15 * 1", "30 12 * jan-mar fri", "0 0 10-12 * */2", "15 3 31 * *"}
	rng := rand.New(rand.NewSource(2))
	for _, e := range exprs {
		c, err := parseCron(e)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			tm := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(365*24*60)) * time.Minute)
			want := tm.Add(time.Minute)
			for !bruteMatch(c, want) {
				want = want.Add(time.Minute)
			}
			if got := c.Next(tm); !got.Equal(want) {
				t.Fatalf("%q.Next(%v) = %v, want %v", e, tm, got, want)
			}
		}
	}
}

func bruteMatch(c *cron, tm time.Time) bool {
	if c.minutes&bit(tm.Minute()) == 0 || c.hours&bit(tm.Hour()) == 0 || c.months&bit(int(tm.Month())) == 0 {
		return false
	}
	md := c.monthDay&bit(tm.Day()) != 0
	wd := c.weekdays&bit(int(tm.Weekday())) != 0
	if c.monthDayStar || c.weekdayStar {
		return md && wd
	}
	return md || wd
}

func TestWindow(t *testing.T) {
	w, err := ParseWindow("22:00-06:00")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		clock string
		want  bool
	}{
		{"21:59", false}, {"22:00", true}, {"23:59", true}, {"00:00", true}, {"05:59", true}, {"06:00", false}, {"12:00", false},
	}
	for _, tt := range tests {
		if got := w.Contains(at(t, time.UTC, "2024-05-10 "+tt.clock)); got != tt.want {
			t.Errorf("22:00-06:00 contains %s = %v, want %v", tt.clock, got, tt.want)
		}
	}
	day, _ := ParseWindow("09:00-17:30")
	if !day.Contains(at(t, time.UTC, "2024-05-10 17:29")) || day.Contains(at(t, time.UTC, "2024-05-10 17:30")) {
		t.Error("09:00-17:30 end is not exclusive")
	}
	if w.String() != "22:00-06:00" {
		t.Errorf("String = %q", w.String())
	}
	for _, bad := range []string{"22:00", "22:00-22:00", "25:00-01:00", "aa-bb"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) succeeded", bad)
		}
	}
}
