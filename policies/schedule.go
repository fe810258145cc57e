package policies

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a job is due. Times are computed on the wall clock of
// the location of the time passed in, so the same schedule gives local
// times on every server.
//
// Daylight saving: a scheduled wall-clock time that does not exist on a
// day (the clocks jump over it) runs at the moment the jump ends, so a
// daily job never misses a day; a wall-clock time that happens twice runs
// at its first occurrence only.
type Schedule interface {
	// Next returns the first scheduled time strictly after after, in
	// after's location.
	Next(after time.Time) time.Time
	// Prev returns the latest scheduled time at or before atOrBefore, in
	// its location.
	Prev(atOrBefore time.Time) time.Time
	// String returns the schedule in the canonical form ParseSchedule
	// accepts.
	String() string
}

// ParseSchedule parses a schedule:
//
//	daily HH:MM            every day at HH:MM
//	weekly DAY[,DAY] HH:MM on the given weekdays (mon..sun or full names)
//	monthly DAY HH:MM      on day 1-31 of every month; a month without that
//	                       day runs on its last day
//	hourly [:MM]           every hour at minute MM (default :00)
//	every DURATION         every fixed interval (e.g. every 6h), counted
//	                       from a fixed epoch (Monday 1970-01-05 00:00 UTC)
//	                       so the times do not drift with the last run
//	@daily, @hourly, ...   the usual cron shorthands
//	M H DOM MON DOW        a standard 5-field cron expression
//
// Keywords and names are case-insensitive.
func ParseSchedule(s string) (Schedule, error) {
	fields := strings.Fields(s)
	fail := func(format string, args ...any) (Schedule, error) {
		return nil, fmt.Errorf("invalid schedule %q: %s", s, fmt.Sprintf(format, args...))
	}
	if len(fields) == 0 {
		return fail("empty (write e.g. \"daily 03:00\", \"every 6h\" or a cron expression)")
	}
	kw := strings.ToLower(fields[0])
	switch kw {
	case "daily":
		if len(fields) != 2 {
			return fail("expected \"daily HH:MM\"")
		}
		h, m, err := parseClock(fields[1])
		if err != nil {
			return fail("%v", err)
		}
		c := newCron(fmt.Sprintf("daily %02d:%02d", h, m))
		c.minutes, c.hours = bit(m), bit(h)
		return c, nil
	case "weekly":
		if len(fields) != 3 {
			return fail("expected \"weekly DAY HH:MM\" (e.g. \"weekly sun 03:00\")")
		}
		days, names, err := parseWeekdays(fields[1])
		if err != nil {
			return fail("%v", err)
		}
		h, m, err := parseClock(fields[2])
		if err != nil {
			return fail("%v", err)
		}
		c := newCron(fmt.Sprintf("weekly %s %02d:%02d", names, h, m))
		c.minutes, c.hours, c.weekdays, c.weekdayStar = bit(m), bit(h), days, false
		return c, nil
	case "monthly":
		if len(fields) != 3 {
			return fail("expected \"monthly DAY HH:MM\" (e.g. \"monthly 1 03:00\")")
		}
		d, err := strconv.Atoi(fields[1])
		if err != nil || d < 1 || d > 31 {
			return fail("day of month must be 1-31, not %q", fields[1])
		}
		h, m, err := parseClock(fields[2])
		if err != nil {
			return fail("%v", err)
		}
		return &monthly{day: d, hour: h, minute: m}, nil
	case "hourly":
		m := 0
		switch len(fields) {
		case 1:
		case 2:
			f := strings.TrimPrefix(fields[1], ":")
			v, err := strconv.Atoi(f)
			if err != nil || len(f) > 2 || v < 0 || v > 59 {
				return fail("minute must be 0-59 (write \"hourly :MM\")")
			}
			m = v
		default:
			return fail("expected \"hourly :MM\"")
		}
		c := newCron(fmt.Sprintf("hourly :%02d", m))
		c.minutes = bit(m)
		return c, nil
	case "every":
		if len(fields) < 2 {
			return fail("expected \"every DURATION\" (e.g. \"every 6h\")")
		}
		d, err := ParseDuration(strings.Join(fields[1:], ""))
		if err != nil {
			return fail("%v", err)
		}
		std, ok := d.Std()
		if !ok {
			return fail("every needs a fixed interval; for months or years use \"monthly DAY HH:MM\" or a cron expression")
		}
		if std <= 0 {
			return fail("the interval must be longer than zero")
		}
		return &every{d: d, interval: std}, nil
	}
	if strings.HasPrefix(kw, "@") {
		if len(fields) != 1 {
			return fail("%s takes no arguments", kw)
		}
		expr, ok := cronMacros[kw]
		if !ok {
			return fail("unknown shorthand %s (use @hourly, @daily, @weekly, @monthly or @yearly)", kw)
		}
		c, err := parseCron(expr)
		if err != nil {
			return fail("%v", err)
		}
		c.text = kw
		return c, nil
	}
	switch {
	case len(fields) == 5:
		c, err := parseCron(strings.Join(fields, " "))
		if err != nil {
			return fail("%v", err)
		}
		return c, nil
	case len(fields) == 6:
		return fail("6 fields: cron expressions with seconds are not supported (use minute hour day-of-month month day-of-week)")
	}
	return fail("expected \"daily HH:MM\", \"weekly DAY HH:MM\", \"monthly DAY HH:MM\", \"hourly :MM\", \"every DURATION\" or a 5-field cron expression")
}

// MustParseSchedule is ParseSchedule for constants in code and tests; it
// panics on an invalid schedule.
func MustParseSchedule(s string) Schedule {
	sc, err := ParseSchedule(s)
	if err != nil {
		panic(err)
	}
	return sc
}

// parseClock parses HH:MM (H:MM too).
func parseClock(s string) (hour, minute int, err error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || hs == "" || len(hs) > 2 || len(ms) != 2 {
		return 0, 0, fmt.Errorf("time must be HH:MM, not %q", s)
	}
	h, err := strconv.Atoi(hs)
	if err != nil || h < 0 {
		return 0, 0, fmt.Errorf("time must be HH:MM, not %q", s)
	}
	m, err := strconv.Atoi(ms)
	if err != nil || m < 0 {
		return 0, 0, fmt.Errorf("time must be HH:MM, not %q", s)
	}
	if h > 23 {
		return 0, 0, fmt.Errorf("hour must be 0-23")
	}
	if m > 59 {
		return 0, 0, fmt.Errorf("minute must be 0-59")
	}
	return h, m, nil
}

var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// parseWeekday accepts mon..sun and the full English names.
func parseWeekday(s string) (int, bool) {
	l := strings.ToLower(s)
	for i, n := range weekdayNames {
		if l == n || l == strings.ToLower(time.Weekday(i).String()) {
			return i, true
		}
	}
	return 0, false
}

// parseWeekdays parses "mon" or "mon,thu" into a bit set and its canonical
// spelling.
func parseWeekdays(s string) (uint64, string, error) {
	var set uint64
	for _, p := range strings.Split(s, ",") {
		d, ok := parseWeekday(p)
		if !ok {
			return 0, "", fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun)", p)
		}
		set |= bit(d)
	}
	// Canonical order: Monday first, as operators read a week.
	var names []string
	for _, d := range []int{1, 2, 3, 4, 5, 6, 0} {
		if set&bit(d) != 0 {
			names = append(names, weekdayNames[d])
		}
	}
	return set, strings.Join(names, ","), nil
}

func bit(i int) uint64 { return 1 << uint(i) }

// ---------------------------------------------------------------- every

// epoch anchors "every" schedules. A Monday at midnight UTC, so that
// "every 1w" runs on Mondays and "every 1d" at midnight UTC.
var epoch = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC).Unix()

type every struct {
	d        Duration
	interval time.Duration // >= 1s, a whole number of seconds
}

func (e *every) String() string { return "every " + e.d.String() }

func (e *every) Next(after time.Time) time.Time {
	step := int64(e.interval / time.Second)
	k := floorDiv64(after.Unix()-epoch, step) + 1
	return time.Unix(epoch+k*step, 0).In(after.Location())
}

func (e *every) Prev(atOrBefore time.Time) time.Time {
	step := int64(e.interval / time.Second)
	k := floorDiv64(atOrBefore.Unix()-epoch, step)
	return time.Unix(epoch+k*step, 0).In(atOrBefore.Location())
}

// ---------------------------------------------------------------- monthly

type monthly struct{ day, hour, minute int }

func (m *monthly) String() string {
	return fmt.Sprintf("monthly %d %02d:%02d", m.day, m.hour, m.minute)
}

// at returns the run of the month that is offset months from (y, mo).
func (m *monthly) at(y int, mo time.Month, offset int, loc *time.Location) time.Time {
	first := time.Date(y, mo+time.Month(offset), 1, 0, 0, 0, 0, time.UTC)
	yy, mm := first.Year(), first.Month()
	d := min(m.day, daysIn(yy, mm))
	return wallTime(yy, mm, d, m.hour, m.minute, loc)
}

func (m *monthly) Next(after time.Time) time.Time {
	y, mo, _ := after.Date()
	// This month's run or next month's is always the answer.
	for i := 0; i <= 2; i++ {
		if t := m.at(y, mo, i, after.Location()); t.After(after) {
			return t
		}
	}
	return time.Time{}
}

func (m *monthly) Prev(atOrBefore time.Time) time.Time {
	y, mo, _ := atOrBefore.Date()
	for i := 0; i >= -2; i-- {
		if t := m.at(y, mo, i, atOrBefore.Location()); !t.After(atOrBefore) {
			return t
		}
	}
	return time.Time{}
}

// ---------------------------------------------------------------- wall clock

// wallTime returns the instant the wall clock of loc shows y-mo-d h:mi.
// The mapping from wall time to instants is made monotonic, so schedules
// can search in wall-clock order:
//   - a wall time that happens twice (clocks set back) gives the first
//     instant;
//   - a wall time that does not exist (clocks set forward) gives the
//     instant the jump happens, the first moment after the skipped time.
func wallTime(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	// The wall time read as UTC; the instant is this minus the offset in
	// force then. Offsets are within ±15h, so the offsets in force 15h
	// either side are the only candidates (zones do not change twice
	// within a day).
	u := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	_, before := u.Add(-15 * time.Hour).In(loc).Zone()
	_, after := u.Add(15 * time.Hour).In(loc).Zone()
	var best time.Time
	for _, off := range []int{before, after} {
		t := u.Add(-time.Duration(off) * time.Second).In(loc)
		if _, o := t.Zone(); o != off {
			continue
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: of the two readings, the earlier lies before the jump, and
	// its zone period ends exactly at the jump.
	a := u.Add(-time.Duration(before) * time.Second).In(loc)
	b := u.Add(-time.Duration(after) * time.Second).In(loc)
	if b.Before(a) {
		a = b
	}
	if _, end := a.ZoneBounds(); !end.IsZero() {
		return end
	}
	return time.Date(y, mo, d, h, mi, 0, 0, loc)
}
