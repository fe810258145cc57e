package policies

import (
	"fmt"
	"strings"
	"time"
)

// Window is a daily span of wall-clock time, such as a quiet window
// "22:00-06:00" in which no job should start. It may cross midnight.
type Window struct {
	Start int // minutes after midnight, inclusive
	End   int // minutes after midnight, exclusive; <= Start crosses midnight
}

// ParseWindow parses "HH:MM-HH:MM". The end is exclusive: "22:00-06:00"
// contains 05:59 but not 06:00.
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("invalid window %q: expected HH:MM-HH:MM (e.g. 22:00-06:00)", s)
	}
	sh, sm, err := parseClock(strings.TrimSpace(a))
	if err != nil {
		return Window{}, fmt.Errorf("invalid window %q: start: %w", s, err)
	}
	eh, em, err := parseClock(strings.TrimSpace(b))
	if err != nil {
		return Window{}, fmt.Errorf("invalid window %q: end: %w", s, err)
	}
	w := Window{Start: sh*60 + sm, End: eh*60 + em}
	if w.Start == w.End {
		return Window{}, fmt.Errorf("invalid window %q: start and end are the same", s)
	}
	return w, nil
}

// Contains reports whether t's wall clock, in t's location, is inside w.
func (w Window) Contains(t time.Time) bool {
	h, m, _ := t.Clock()
	x := h*60 + m
	if w.Start < w.End {
		return x >= w.Start && x < w.End
	}
	return x >= w.Start || x < w.End
}

// String returns the canonical "HH:MM-HH:MM".
func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}
