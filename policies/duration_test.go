package policies

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	_ "time/tzdata" // tests must not depend on the machine's zoneinfo
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Duration
	}{
		{"seconds", "30s", Duration{Clock: 30 * time.Second}},
		{"lower-case m is minutes", "15m", Duration{Clock: 15 * time.Minute}},
		{"hours", "6h", Duration{Clock: 6 * time.Hour}},
		{"days", "3d", Duration{Days: 3}},
		{"days upper-case", "3D", Duration{Days: 3}},
		{"weeks count as seven days", "2w", Duration{Days: 14}},
		{"weeks upper-case", "2W", Duration{Days: 14}},
		{"upper-case M is calendar months", "1M", Duration{Months: 1}},
		{"years", "1y", Duration{Years: 1}},
		{"years upper-case", "1Y", Duration{Years: 1}},
		{"combination", "1d12h", Duration{Days: 1, Clock: 12 * time.Hour}},
		{"combination with spaces", " 1d 12h ", Duration{Days: 1, Clock: 12 * time.Hour}},
		{"weeks and days add up", "1w2d", Duration{Days: 9}},
		{"every unit", "1y2M3w4d5h6m7s", Duration{Years: 1, Months: 2, Days: 25, Clock: 5*time.Hour + 6*time.Minute + 7*time.Second}},
		{"units in any order", "30m1h", Duration{Clock: 90 * time.Minute}},
		{"bare zero", "0", Duration{}},
		{"zero with a unit", "0s", Duration{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseDuration(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown unit is named with the valid ones", "3x", `invalid duration "3x": unknown unit "x" (use s, m, h, d, w, M, y)`},
		{"empty", "", `invalid duration "": empty`},
		{"fractions are refused", "1.5h", "fractions are not supported"},
		{"negative is refused", "-1h", "must not be negative"},
		{"number without unit", "30", `missing unit after 30`},
		{"unit without number", "h", `expected a number at "h"`},
		{"unit twice", "1h2h", `unit "h" appears twice`},
		{"weeks and days are different units", "1w1W", `unit "W" appears twice`},
		{"words are not units", "3days", `unknown unit "days"`},
		{"milliseconds are not supported", "10ms", `unknown unit "ms"`},
		{"upper-case H is not a unit", "1H", `unknown unit "H"`},
		{"huge number", "99999999999999999999d", "too large"},
		{"longer than time.Duration can hold", "300y", "too long"},
		{"trailing junk", "1h!", `unexpected "!"`},
		{"plus sign", "+1h", `unexpected "+"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) succeeded, want error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseDuration(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDurationStringIsCanonicalAndRoundTrips(t *testing.T) {
	tests := []struct{ in, want string }{
		{"30s", "30s"},
		{"90m", "1h30m"},
		{"14d", "2w"},
		{"1d12h", "1d12h"},
		{"36h", "36h"}, // hours are not folded into days: days are calendar days
		{"1Y", "1y"},
		{"1y2M3w4d5h6m7s", "1y2M3w4d5h6m7s"},
		{"0", "0"},
	}
	for _, tt := range tests {
		d := MustParseDuration(tt.in)
		if got := d.String(); got != tt.want {
			t.Errorf("ParseDuration(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("round trip of %q: got %+v, %v", tt.in, back, err)
		}
	}
}

func TestDurationJSONUsesTheOperatorSpelling(t *testing.T) {
	in := struct{ D Duration }{MustParseDuration("1M2d")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"D":"1M2d"}` {
		t.Fatalf("json = %s", b)
	}
	var out struct{ D Duration }
	if err := json.Unmarshal(b, &out); err != nil || out.D != in.D {
		t.Fatalf("unmarshal: %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"D":"3x"}`), &out); err == nil {
		t.Fatal("unmarshal of a bad duration succeeded")
	}
}

func TestDurationStdConvertsOnlyFixedUnits(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"3d", 72 * time.Hour, true},
		{"1w1h", 169 * time.Hour, true},
		{"45s", 45 * time.Second, true},
		{"1M", 0, false},
		{"1y", 0, false},
	}
	for _, tt := range tests {
		got, ok := MustParseDuration(tt.in).Std()
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%q.Std() = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestDurationApproxCountsMonthsAs30DaysAndYearsAs365(t *testing.T) {
	if got := MustParseDuration("1M").Approx(); got != 30*24*time.Hour {
		t.Errorf("1M ~ %v", got)
	}
	if got := MustParseDuration("1y1d").Approx(); got != 366*24*time.Hour {
		t.Errorf("1y1d ~ %v", got)
	}
	if MustParseDuration("4w").Compare(MustParseDuration("1M")) != -1 ||
		MustParseDuration("1M").Compare(MustParseDuration("30d")) != 0 ||
		MustParseDuration("1y").Compare(MustParseDuration("11M")) != 1 {
		t.Error("Compare does not order by approximate length")
	}
}

func TestDurationAddToUsesTheCalendar(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	local := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		d     string
		from  time.Time
		want  time.Time
		minus bool
	}{
		{"a month from 31 January is the end of February", "1M", utc("2024-01-31 10:00"), utc("2024-02-29 10:00"), false},
		{"a month from 31 January in a common year", "1M", utc("2023-01-31 10:00"), utc("2023-02-28 10:00"), false},
		{"a year from 29 February is 28 February", "1y", utc("2024-02-29 00:00"), utc("2025-02-28 00:00"), false},
		{"months roll over the year", "13M", utc("2024-12-15 00:00"), utc("2026-01-15 00:00"), false},
		{"days keep the wall clock across daylight saving", "1d", local("2024-03-30 03:00"), local("2024-03-31 03:00"), false},
		{"clock units are elapsed time", "24h", local("2024-03-30 03:00"), local("2024-03-31 04:00"), false},
		{"combination", "1d12h", utc("2024-05-01 00:00"), utc("2024-05-02 12:00"), false},
		{"three months before 31 May is the end of February", "3M", utc("2024-05-31 03:00"), utc("2024-02-29 03:00"), true},
		{"subtracting days", "2w", utc("2024-03-10 00:00"), utc("2024-02-25 00:00"), true},
		{"subtracting across a year", "1y1M", utc("2024-01-15 00:00"), utc("2022-12-15 00:00"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := MustParseDuration(tt.d)
			var got time.Time
			if tt.minus {
				got = d.SubtractFrom(tt.from)
			} else {
				got = d.AddTo(tt.from)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if got.Location() != tt.from.Location() {
				t.Fatalf("location changed to %v", got.Location())
			}
		})
	}
}

func TestDurationHasPassed(t *testing.T) {
	since := time.Date(2024, 1, 31, 3, 0, 0, 0, time.UTC)
	d := MustParseDuration("1M")
	if d.HasPassed(since, time.Date(2024, 2, 29, 2, 59, 0, 0, time.UTC)) {
		t.Error("a month has not passed one minute before the end of February")
	}
	if !d.HasPassed(since, time.Date(2024, 2, 29, 3, 0, 0, 0, time.UTC)) {
		t.Error("a month has passed at the end of February, same time")
	}
}
