package policies

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Duration is an operator duration such as "30s", "3d", "1M" or "1d12h".
//
// Months and years are calendar units: their length depends on where they
// start, so a Duration is applied to a time with AddTo or SubtractFrom.
// Days and weeks are calendar days too (AddTo keeps the wall-clock time
// across a daylight saving change); Std converts them at 24 hours a day
// where a fixed length is wanted.
type Duration struct {
	Years  int
	Months int
	Days   int           // weeks are counted here, 7 days each
	Clock  time.Duration // hours, minutes and seconds
}

// durationUnits is the unit list every error message offers.
const durationUnits = "use s, m, h, d, w, M, y"

// maxApprox bounds a Duration so that Approx never overflows time.Duration
// (about 292 years).
const maxApprox = time.Duration(math.MaxInt64)

const (
	day = 24 * time.Hour
	// approxMonth and approxYear are the lengths Approx gives the calendar
	// units: round numbers an operator can check by hand.
	approxMonth = 30 * day
	approxYear  = 365 * day
)

// ParseDuration parses an operator duration: one or more <integer><unit>
// parts, each unit at most once, optionally separated by spaces. Units:
// s (seconds), m (minutes), h (hours), d or D (days), w or W (weeks),
// M (calendar months) and y or Y (calendar years). Note that m is minutes
// and M is months. "0" alone is the zero duration. Fractions are refused
// (write 1h30m, not 1.5h) because a fraction of a calendar month has no
// meaning.
func ParseDuration(s string) (Duration, error) {
	fail := func(format string, args ...any) (Duration, error) {
		return Duration{}, fmt.Errorf("invalid duration %q: %s", s, fmt.Sprintf(format, args...))
	}
	text := strings.TrimSpace(s)
	if text == "" {
		return fail("empty (write e.g. 30s, 15m, 6h, 3d, 2w, 1M, 1y)")
	}
	if text == "0" {
		return Duration{}, nil
	}
	var d Duration
	seen := map[string]bool{}
	var hours, minutes, seconds int64
	for i := 0; i < len(text); {
		if text[i] == ' ' || text[i] == '\t' {
			i++
			continue
		}
		if text[i] == '-' {
			return fail("must not be negative")
		}
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j == i {
			if !isLetter(text[i]) {
				r, _ := utf8.DecodeRuneInString(text[i:])
				return fail("unexpected %q", string(r))
			}
			return fail("expected a number at %q", text[i:])
		}
		if j < len(text) && (text[j] == '.' || text[j] == ',') {
			return fail("fractions are not supported; combine units instead (e.g. 1h30m)")
		}
		n, err := strconv.ParseInt(text[i:j], 10, 64)
		if err != nil || n > math.MaxInt32 {
			return fail("number %s is too large", text[i:j])
		}
		k := j
		for k < len(text) && isLetter(text[k]) {
			k++
		}
		unit := text[j:k]
		if unit == "" {
			if k < len(text) {
				r, _ := utf8.DecodeRuneInString(text[k:])
				return fail("unexpected %q after %s", string(r), text[i:j])
			}
			return fail("missing unit after %s (%s)", text[i:j], durationUnits)
		}
		canon, ok := canonicalDurationUnit(unit)
		if !ok {
			return fail("unknown unit %q (%s)", unit, durationUnits)
		}
		if seen[canon] {
			return fail("unit %q appears twice", unit)
		}
		seen[canon] = true
		switch canon {
		case "y":
			d.Years = int(n)
		case "M":
			d.Months = int(n)
		case "w":
			d.Days += int(n) * 7
		case "d":
			d.Days += int(n)
		case "h":
			hours = n
		case "m":
			minutes = n
		case "s":
			seconds = n
		}
		i = k
	}
	// Check the total nominal length in floating point first so that the
	// integer arithmetic here and in Approx cannot overflow; the 1% margin
	// covers floating-point rounding.
	total := float64(d.Years)*float64(approxYear) + float64(d.Months)*float64(approxMonth) +
		float64(d.Days)*float64(day) + float64(hours)*float64(time.Hour) +
		float64(minutes)*float64(time.Minute) + float64(seconds)*float64(time.Second)
	if total >= 0.99*float64(maxApprox) {
		return fail("too long (at most about 290 years)")
	}
	d.Clock = time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute + time.Duration(seconds)*time.Second
	return d, nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// canonicalDurationUnit maps the accepted spellings to one letter. Only m
// and M are case-sensitive, because they mean different things.
func canonicalDurationUnit(u string) (string, bool) {
	switch u {
	case "s", "m", "h", "M":
		return u, true
	case "d", "D":
		return "d", true
	case "w", "W":
		return "w", true
	case "y", "Y":
		return "y", true
	}
	return "", false
}

// MustParseDuration is ParseDuration for constants in code and tests; it
// panics on an invalid duration.
func MustParseDuration(s string) Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsZero reports whether d is the zero duration.
func (d Duration) IsZero() bool { return d == Duration{} }

// HasCalendarUnits reports whether d contains months or years, whose length
// depends on the date they are applied to.
func (d Duration) HasCalendarUnits() bool { return d.Years != 0 || d.Months != 0 }

// Std converts d to a time.Duration, counting a day as 24 hours. ok is
// false when d contains months or years, which have no fixed length.
func (d Duration) Std() (time.Duration, bool) {
	if d.HasCalendarUnits() {
		return 0, false
	}
	return time.Duration(d.Days)*day + d.Clock, true
}

// Approx is d's nominal length: a month counts as 30 days, a year as 365.
// Use it for display and ordering only, never for date arithmetic.
func (d Duration) Approx() time.Duration {
	return time.Duration(d.Years)*approxYear + time.Duration(d.Months)*approxMonth +
		time.Duration(d.Days)*day + d.Clock
}

// Compare orders durations by their approximate length: -1 if d is
// shorter than o, +1 if longer, 0 if the same.
func (d Duration) Compare(o Duration) int {
	a, b := d.Approx(), o.Approx()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AddTo returns t + d in t's location: years and months first (a day that
// does not exist in the resulting month becomes its last day, so 31 Jan +
// 1M is 28 or 29 Feb, not 2 or 3 Mar), then days on the calendar (keeping
// the wall-clock time), then the hours, minutes and seconds.
func (d Duration) AddTo(t time.Time) time.Time {
	t = addMonthsClamped(t, d.Years*12+d.Months)
	if d.Days != 0 {
		t = t.AddDate(0, 0, d.Days)
	}
	return t.Add(d.Clock)
}

// SubtractFrom returns t - d, undoing the parts in the reverse order of
// AddTo (clock, days, then months and years, clamped to the month's end).
// "Three months ago" on 31 May is 28 or 29 Feb.
func (d Duration) SubtractFrom(t time.Time) time.Time {
	t = t.Add(-d.Clock)
	if d.Days != 0 {
		t = t.AddDate(0, 0, -d.Days)
	}
	return addMonthsClamped(t, -(d.Years*12 + d.Months))
}

// HasPassed reports whether at least d has gone by between since and now,
// with calendar arithmetic (now >= since + d).
func (d Duration) HasPassed(since, now time.Time) bool {
	return !now.Before(d.AddTo(since))
}

// String returns the canonical spelling, which ParseDuration accepts: units
// from the largest down, e.g. "1y2M", "2w3d", "1d12h", "0" for zero.
func (d Duration) String() string {
	if d.IsZero() {
		return "0"
	}
	var b strings.Builder
	part := func(n int64, unit string) {
		if n != 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteString(unit)
		}
	}
	part(int64(d.Years), "y")
	part(int64(d.Months), "M")
	part(int64(d.Days/7), "w")
	part(int64(d.Days%7), "d")
	c := d.Clock
	part(int64(c/time.Hour), "h")
	c %= time.Hour
	part(int64(c/time.Minute), "m")
	c %= time.Minute
	part(int64(c/time.Second), "s")
	if b.Len() == 0 { // only sub-second clock, which ParseDuration never makes
		return c.String()
	}
	return b.String()
}

// MarshalText writes the canonical spelling, so durations in state files
// and JSON plans read like the configuration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses what MarshalText (or an operator) wrote.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// addMonthsClamped moves t by n calendar months, keeping the wall-clock
// time and clamping the day to the last day of the resulting month.
func addMonthsClamped(t time.Time, n int) time.Time {
	if n == 0 {
		return t
	}
	y, m, dd := t.Date()
	hh, mm, ss := t.Clock()
	idx := int(m) - 1 + n
	y += floorDiv(idx, 12)
	m = time.Month(idx-floorDiv(idx, 12)*12) + 1
	if last := daysIn(y, m); dd > last {
		dd = last
	}
	return time.Date(y, m, dd, hh, mm, ss, t.Nanosecond(), t.Location())
}

// daysIn returns the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorDiv64(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
