package policies

import (
	"testing"
	"time"
)

// The parsers take operator text from configuration files; whatever the
// text, they must return an error rather than panic, and what they accept
// must behave.

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1d12h", "1M", "3x", "", "99999999999y", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q -> %q does not round-trip: %+v, %v", s, d, back, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4096", "1.5GB", "1GiB", "-1", "8EiB", ".", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("%q -> negative %d", s, n)
		}
	})
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"daily 03:00", "weekly mon 03:00", "monthly 31 03:00", "every 6h", "*/5 1-3 * jan mon-fri", "@daily", "0 0 30 2 *"} {
		f.Add(s)
	}
	now := time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSchedule(s)
		if err != nil {
			return
		}
		if next := sc.Next(now); !next.After(now) {
			t.Fatalf("%q: Next(%v) = %v", s, now, next)
		}
		if prev := sc.Prev(now); prev.After(now) || prev.IsZero() {
			t.Fatalf("%q: Prev(%v) = %v", s, now, prev)
		}
		if _, err := ParseSchedule(sc.String()); err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", s, sc, err)
		}
	})
}
