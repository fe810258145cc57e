package policies

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// cron is a calendar schedule: a time matches when its minute, hour, month
// and day are in the sets. It backs the 5-field cron expressions and the
// daily, weekly and hourly forms.
type cron struct {
	text     string
	minutes  uint64 // bits 0-59
	hours    uint64 // bits 0-23
	monthDay uint64 // bits 1-31
	months   uint64 // bits 1-12
	weekdays uint64 // bits 0-6, Sunday = 0
	// A day field written as "*" does not restrict. When both day fields
	// restrict, a day matches if either does (POSIX cron semantics).
	monthDayStar, weekdayStar bool
}

// newCron returns a schedule that matches every minute of every day; the
// callers narrow it.
func newCron(text string) *cron {
	return &cron{
		text:         text,
		minutes:      fullSet(0, 59),
		hours:        fullSet(0, 23),
		monthDay:     fullSet(1, 31),
		months:       fullSet(1, 12),
		weekdays:     fullSet(0, 6),
		monthDayStar: true,
		weekdayStar:  true,
	}
}

func fullSet(lo, hi int) uint64 {
	var s uint64
	for i := lo; i <= hi; i++ {
		s |= bit(i)
	}
	return s
}

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// cronField describes one of the five fields.
type cronField struct {
	name   string
	lo, hi int
	names  []string // names[i] is value lo+i; nil if the field has none
}

var (
	minuteField   = cronField{name: "minute", lo: 0, hi: 59}
	hourField     = cronField{name: "hour", lo: 0, hi: 23}
	monthDayField = cronField{name: "day of month", lo: 1, hi: 31}
	monthField    = cronField{name: "month", lo: 1, hi: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}}
	// Day of week accepts 0-7, both 0 and 7 being Sunday.
	weekdayField = cronField{name: "day of week", lo: 0, hi: 7,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
)

// parseCron parses "minute hour day-of-month month day-of-week". Each field
// is a comma-separated list of *, N, N-M, with an optional /STEP after *
// or a range (N/STEP means N to the maximum). Months and weekdays take
// names (jan, mon, ...).
func parseCron(expr string) (*cron, error) {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return nil, fmt.Errorf("a cron expression has 5 fields (minute hour day-of-month month day-of-week), not %d", len(f))
	}
	c := newCron(strings.Join(f, " "))
	var err error
	if c.minutes, _, err = parseCronField(f[0], minuteField); err != nil {
		return nil, err
	}
	if c.hours, _, err = parseCronField(f[1], hourField); err != nil {
		return nil, err
	}
	if c.monthDay, c.monthDayStar, err = parseCronField(f[2], monthDayField); err != nil {
		return nil, err
	}
	if c.months, _, err = parseCronField(f[3], monthField); err != nil {
		return nil, err
	}
	if c.weekdays, c.weekdayStar, err = parseCronField(f[4], weekdayField); err != nil {
		return nil, err
	}
	// 7 is another name for Sunday.
	if c.weekdays&bit(7) != 0 {
		c.weekdays = c.weekdays&^bit(7) | bit(0)
	}
	if !c.canMatch() {
		return nil, fmt.Errorf("%q never matches: no month in it has that day", c.text)
	}
	return c, nil
}

// parseCronField returns the set of values and whether the field is "*".
func parseCronField(s string, fd cronField) (uint64, bool, error) {
	if s == "*" {
		return fullSet(fd.lo, fd.hi), true, nil
	}
	var set uint64
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, false, fmt.Errorf("%s field %q: empty list element", fd.name, s)
		}
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > fd.hi {
				return 0, false, fmt.Errorf("%s field %q: step must be a number from 1 to %d", fd.name, s, fd.hi)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = fd.lo, fd.hi
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, fd, false); err != nil {
				return 0, false, fmt.Errorf("%s field %q: %w", fd.name, s, err)
			}
			if hi, err = cronValue(b, fd, true); err != nil {
				return 0, false, fmt.Errorf("%s field %q: %w", fd.name, s, err)
			}
			if lo > hi {
				return 0, false, fmt.Errorf("%s field %q: range %s goes backwards", fd.name, s, rng)
			}
		default:
			v, err := cronValue(rng, fd, false)
			if err != nil {
				return 0, false, fmt.Errorf("%s field %q: %w", fd.name, s, err)
			}
			lo, hi = v, v
			if hasStep { // N/STEP: from N to the end
				hi = fd.hi
			}
		}
		for v := lo; v <= hi; v += step {
			set |= bit(v)
		}
	}
	return set, false, nil
}

// cronValue parses a number or a name. As the end of a range, "sun" is 7
// so that "fri-sun" works.
func cronValue(s string, fd cronField, rangeEnd bool) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing value")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < fd.lo || n > fd.hi {
			return 0, fmt.Errorf("%s must be %d-%d, not %d", fd.name, fd.lo, fd.hi, n)
		}
		return n, nil
	}
	l := strings.ToLower(s)
	for i, n := range fd.names {
		if l == n {
			v := fd.lo + i
			if fd.name == weekdayField.name && v == 0 && rangeEnd {
				v = 7
			}
			return v, nil
		}
	}
	if fd.names != nil {
		return 0, fmt.Errorf("unknown %s %q (use %d-%d or %s..%s)", fd.name, s, fd.lo, fd.hi, fd.names[0], fd.names[len(fd.names)-1])
	}
	return 0, fmt.Errorf("%s must be a number %d-%d, not %q", fd.name, fd.lo, fd.hi, s)
}

// canMatch reports whether some day of some year matches, refusing
// expressions such as "0 0 30 2 *" that would never run.
func (c *cron) canMatch() bool {
	if c.monthDayStar || !c.weekdayStar {
		return true // every day, or OR semantics with a weekday
	}
	for m := 1; m <= 12; m++ {
		if c.months&bit(m) == 0 {
			continue
		}
		maxDay := daysIn(2000, time.Month(m)) // a leap year: Feb has 29
		if c.monthDay&fullSet(1, maxDay) != 0 {
			return true
		}
	}
	return false
}

func (c *cron) String() string { return c.text }

// dayMatches applies the day-of-month / day-of-week rule to a civil date.
func (c *cron) dayMatches(d time.Time) bool {
	if c.months&bit(int(d.Month())) == 0 {
		return false
	}
	md := c.monthDay&bit(d.Day()) != 0
	wd := c.weekdays&bit(int(d.Weekday())) != 0
	if c.monthDayStar || c.weekdayStar {
		return md && wd
	}
	return md || wd
}

// searchDays bounds the search: a parsed expression matches at least once
// in any 8 years (29 February can be 8 years apart), so 9 is enough.
const searchDays = 9 * 366

// Next walks the calendar forward from after's date. On each matching day
// it tries the hours and minutes in order; wallTime is monotonic, so the
// first slot after after is the answer.
func (c *cron) Next(after time.Time) time.Time {
	loc := after.Location()
	y, m, d := after.Date()
	lastMinute := 63 - bits.LeadingZeros64(c.minutes)
	for i := 0; i < searchDays; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC) // civil date arithmetic
		if !c.dayMatches(day) {
			continue
		}
		dy, dm, dd := day.Date()
		for h := 0; h < 24; h++ {
			if c.hours&bit(h) == 0 {
				continue
			}
			// Skip the hour at once if even its last slot is not later.
			if i == 0 && !wallTime(dy, dm, dd, h, lastMinute, loc).After(after) {
				continue
			}
			for mi := 0; mi < 60; mi++ {
				if c.minutes&bit(mi) == 0 {
					continue
				}
				if t := wallTime(dy, dm, dd, h, mi, loc); t.After(after) {
					return t
				}
			}
		}
	}
	return time.Time{}
}

// Prev is Next walking backwards.
func (c *cron) Prev(atOrBefore time.Time) time.Time {
	loc := atOrBefore.Location()
	y, m, d := atOrBefore.Date()
	firstMinute := bits.TrailingZeros64(c.minutes)
	for i := 0; i < searchDays; i++ {
		day := time.Date(y, m, d-i, 0, 0, 0, 0, time.UTC)
		if !c.dayMatches(day) {
			continue
		}
		dy, dm, dd := day.Date()
		for h := 23; h >= 0; h-- {
			if c.hours&bit(h) == 0 {
				continue
			}
			if i == 0 && wallTime(dy, dm, dd, h, firstMinute, loc).After(atOrBefore) {
				continue
			}
			for mi := 59; mi >= 0; mi-- {
				if c.minutes&bit(mi) == 0 {
					continue
				}
				if t := wallTime(dy, dm, dd, h, mi, loc); !t.After(atOrBefore) {
					return t
				}
			}
		}
	}
	return time.Time{}
}
