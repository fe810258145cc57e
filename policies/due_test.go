package policies

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

func windows(t testing.TB, specs ...string) []Window {
	t.Helper()
	var ws []Window
	for _, s := range specs {
		w, err := ParseWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	return ws
}

// atOrZero is at, with "" for the zero time.
func atOrZero(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	return at(t, loc, s)
}

func TestDue(t *testing.T) {
	utc := time.UTC
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name        string
		sched       string // "" = no schedule
		catchUp     string // "" = nil
		quiet       []string
		loc         *time.Location // nil = UTC
		lastSuccess string         // "" = never
		now         string
		wantDue     bool
		wantReason  string
		wantNext    string // "" = zero
	}{
		{
			name: "a job that never succeeded is due", sched: "daily 03:00",
			now: "2026-11-21 14:00", wantDue: true, wantReason: "due: never succeeded", wantNext: "2026-11-21 14:00",
		},
		{
			name: "without a schedule a job is due at every run", lastSuccess: "2026-11-21 13:00",
			now: "2026-11-21 14:00", wantDue: true,
			wantReason: "due: no schedule, due at every run (last success 2026-11-21T13:00)", wantNext: "2026-11-21 14:00",
		},
		{
			name: "the latest slot after the last success is due", sched: "daily 03:00", lastSuccess: "2026-11-20 03:04",
			now: "2026-11-21 03:00", wantDue: true,
			wantReason: "due: scheduled daily 03:00 at 2026-11-21T03:00, last success 2026-11-20T03:04", wantNext: "2026-11-21 03:00",
		},
		{
			name: "a slot already run is not due until the next one", sched: "daily 03:00", lastSuccess: "2026-11-21 03:04",
			now:        "2026-11-21 10:00",
			wantReason: "not due: scheduled run 2026-11-21T03:00 done (last success 2026-11-21T03:04); next run 2026-11-22T03:00",
			wantNext:   "2026-11-22 03:00",
		},
		{
			name: "a failed run does not count: it is retried within the default hour", sched: "daily 03:00", lastSuccess: "2026-11-20 03:04",
			now: "2026-11-21 04:00", wantDue: true,
			wantReason: "due: scheduled daily 03:00 at 2026-11-21T03:00, last success 2026-11-20T03:04", wantNext: "2026-11-21 04:00",
		},
		{
			name: "after the default hour a missed run waits for the next slot", sched: "daily 03:00", lastSuccess: "2026-11-20 03:04",
			now:        "2026-11-21 04:01",
			wantReason: "not due: missed run 2026-11-21T03:00 is older than the default catch_up 1h; next run 2026-11-22T03:00",
			wantNext:   "2026-11-22 03:00",
		},
		{
			name: "a missed run is caught up within catch_up", sched: "daily 03:00", catchUp: "3d", lastSuccess: "2026-11-16 03:04",
			now: "2026-11-20 10:00", wantDue: true,
			wantReason: "due: missed run 2026-11-20T03:00 caught up within catch_up 3d (last success 2026-11-16T03:04)",
			wantNext:   "2026-11-20 10:00",
		},
		{
			name: "a missed run older than catch_up is not made", sched: "weekly sun 03:00", catchUp: "3d", lastSuccess: "2026-11-08 03:04",
			now:        "2026-11-19 10:00",
			wantReason: "not due: missed run 2026-11-15T03:00 is older than catch_up 3d; next run 2026-11-22T03:00",
			wantNext:   "2026-11-22 03:00",
		},
		{
			name: "catch_up is calendar arithmetic: 1M from 31 January ends on 28 February", sched: "0 3 31 1 *", catchUp: "1M",
			lastSuccess: "2025-02-01 00:00", now: "2026-02-28 03:00", wantDue: true,
			wantReason: "due: missed run 2026-01-31T03:00 caught up within catch_up 1M (last success 2025-02-01T00:00)",
			wantNext:   "2026-02-28 03:00",
		},
		{
			name: "catch_up 1M from 31 January is over after 28 February", sched: "0 3 31 1 *", catchUp: "1M",
			lastSuccess: "2025-02-01 00:00", now: "2026-02-28 03:01",
			wantReason: "not due: missed run 2026-01-31T03:00 is older than catch_up 1M; next run 2027-01-31T03:00",
			wantNext:   "2027-01-31 03:00",
		},
		{
			name: "every 6h is due at each slot", sched: "every 6h", lastSuccess: "2026-11-21 06:02",
			now: "2026-11-21 12:30", wantDue: true,
			wantReason: "due: scheduled every 6h at 2026-11-21T12:00, last success 2026-11-21T06:02", wantNext: "2026-11-21 12:30",
		},
		{
			name: "schedules follow the wall clock of now's location", sched: "daily 03:00", loc: berlin,
			lastSuccess: "2026-11-20 03:04", now: "2026-11-21 03:30", wantDue: true,
			wantReason: "due: scheduled daily 03:00 at 2026-11-21T03:00, last success 2026-11-20T03:04", wantNext: "2026-11-21 03:30",
		},
		{
			name: "inside a quiet window nothing starts, and the reason says until when", quiet: []string{"22:00-06:00"},
			lastSuccess: "2026-11-21 13:00", now: "2026-11-21 23:30",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00", wantNext: "2026-11-22 06:00",
		},
		{
			name: "a quiet window across midnight holds after midnight too", quiet: []string{"22:00-06:00"},
			lastSuccess: "2026-11-21 13:00", now: "2026-11-22 05:59",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00", wantNext: "2026-11-22 06:00",
		},
		{
			name: "the end of a quiet window is outside it", quiet: []string{"22:00-06:00"},
			lastSuccess: "2026-11-21 13:00", now: "2026-11-22 06:00", wantDue: true,
			wantReason: "due: no schedule, due at every run (last success 2026-11-21T13:00)", wantNext: "2026-11-22 06:00",
		},
		{
			name: "overlapping quiet windows are one", quiet: []string{"22:00-02:00", "01:00-06:00"},
			lastSuccess: "2026-11-21 13:00", now: "2026-11-21 23:00",
			wantReason: "not due: in quiet window 22:00-02:00 until 06:00", wantNext: "2026-11-22 06:00",
		},
		{
			name: "a job that never succeeded still waits for the quiet window to end", sched: "daily 03:00", quiet: []string{"22:00-06:00"},
			now:        "2026-11-21 23:00",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00", wantNext: "2026-11-22 06:00",
		},
		{
			name: "a slot inside a quiet window runs when it ends if catch_up reaches that far", sched: "daily 03:00", catchUp: "4h",
			quiet: []string{"22:00-06:00"}, lastSuccess: "2026-11-20 06:04", now: "2026-11-21 03:00",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00", wantNext: "2026-11-21 06:00",
		},
		{
			name: "catch_up is inclusive: a slot 3h before the quiet window ends runs at its end with catch_up 3h", sched: "daily 03:00", catchUp: "3h",
			quiet: []string{"22:00-06:00"}, lastSuccess: "2026-11-20 06:04", now: "2026-11-21 03:00",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00", wantNext: "2026-11-21 06:00",
		},
		{
			name: "a slot inside a quiet window beyond catch_up never runs, and the reason says so", sched: "daily 03:00",
			quiet: []string{"22:00-06:00"}, lastSuccess: "2026-11-20 06:04", now: "2026-11-21 03:00",
			wantReason: "not due: in quiet window 22:00-06:00 until 06:00; no later run is possible (every slot falls in a quiet window beyond the catch_up window)",
		},
		{
			name: "when the next slot is quiet, the next run is at the window's end", sched: "daily 03:00", catchUp: "4h",
			quiet: []string{"22:00-06:00"}, lastSuccess: "2026-11-21 06:04", now: "2026-11-21 10:00",
			wantReason: "not due: scheduled run 2026-11-21T03:00 done (last success 2026-11-21T06:04); next run 2026-11-22T06:00",
			wantNext:   "2026-11-22 06:00",
		},
		{
			name: "quiet windows that cover the whole day stop everything", quiet: []string{"00:00-12:00", "12:00-00:00"},
			lastSuccess: "2026-11-21 13:00", now: "2026-11-21 14:00",
			wantReason: "not due: in quiet window 12:00-00:00, and the quiet windows cover the whole day",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = utc
			}
			in := DueInput{Quiet: windows(t, tc.quiet...), LastSuccess: atOrZero(t, loc, tc.lastSuccess), Now: at(t, loc, tc.now)}
			if tc.sched != "" {
				in.Schedule = MustParseSchedule(tc.sched)
			}
			if tc.catchUp != "" {
				in.CatchUp = dur(tc.catchUp)
			}
			d := Due(in)
			if d.Due != tc.wantDue || d.Reason != tc.wantReason {
				t.Errorf("Due = %v, %q\nwant  %v, %q", d.Due, d.Reason, tc.wantDue, tc.wantReason)
			}
			if want := atOrZero(t, loc, tc.wantNext); !d.Next.Equal(want) {
				t.Errorf("Next = %v, want %v", d.Next, want)
			}
		})
	}
}

func TestDueFull(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name      string
		fullEvery string // "" = nil
		lastFull  string
		now       string
		quiet     []string
		want      bool
		reason    string
	}{
		{"without full_every runs are incremental", "", "", "2026-02-01 03:00", nil, false, "incremental: no full_every"},
		{"the first run is full", "1M", "", "2026-02-01 03:00", nil, true, "full: no full run yet (full_every 1M)"},
		{"full_every 1M from 31 January is not reached before 28 February", "1M", "2026-01-31 03:04", "2026-02-28 03:03", nil, false,
			"incremental: last full 2026-01-31T03:04, next full from 2026-02-28T03:04 (full_every 1M)"},
		{"full_every 1M from 31 January is reached on 28 February", "1M", "2026-01-31 03:04", "2026-02-28 03:04", nil, true,
			"full: last full 2026-01-31T03:04, full_every 1M reached at 2026-02-28T03:04"},
		{"full is decided apart from due: also inside a quiet window", "1w", "2026-01-01 03:04", "2026-02-01 23:00", []string{"22:00-06:00"}, true,
			"full: last full 2026-01-01T03:04, full_every 1w reached at 2026-01-08T03:04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := DueInput{LastFull: atOrZero(t, utc, tc.lastFull), Now: at(t, utc, tc.now), Quiet: windows(t, tc.quiet...),
				LastSuccess: at(t, utc, "2026-01-01 03:04")}
			if tc.fullEvery != "" {
				in.FullEvery = dur(tc.fullEvery)
			}
			d := Due(in)
			if d.Full != tc.want || d.FullReason != tc.reason {
				t.Errorf("Full = %v, %q\nwant   %v, %q", d.Full, d.FullReason, tc.want, tc.reason)
			}
		})
	}
}

// sim is cron driving "runner apply": a poll every step from from to to,
// none while the machine is off. A run that Due allows takes 4 minutes;
// the runs started at a time in fails fail, which leaves LastSuccess alone.
type sim struct {
	in       DueInput
	from, to time.Time
	step     time.Duration
	off      [][2]time.Time
	fails    []time.Time
}

// run returns the start of every run (with " full" when it was one) and
// the decision at every poll, checking at each that Due agrees with itself
// and with the Next it announced before.
func (s sim) run(t *testing.T) (runs []string, decisions map[time.Time]DueDecision) {
	t.Helper()
	in := s.in
	decisions = map[time.Time]DueDecision{}
	var promised time.Time // the last Next Due announced
	for now := s.from; now.Before(s.to); now = now.Add(s.step) {
		if slices.ContainsFunc(s.off, func(o [2]time.Time) bool { return !now.Before(o[0]) && now.Before(o[1]) }) {
			continue
		}
		in.Now = now
		d := Due(in)
		decisions[now] = d
		if d.Due != d.Next.Equal(now) || d.Due != strings.HasPrefix(d.Reason, "due:") {
			t.Fatalf("%s: inconsistent decision %+v", now, d)
		}
		if d.Due && !promised.IsZero() && now.Before(promised) {
			t.Fatalf("%s: due before the announced next run %s", now, promised)
		}
		if !d.Due {
			promised = d.Next
			continue
		}
		promised = time.Time{}
		run := stamp(now, now.Location())
		if d.Full {
			run += " full"
		}
		runs = append(runs, run)
		if slices.ContainsFunc(s.fails, now.Equal) {
			continue
		}
		in.LastSuccess = now.Add(4 * time.Minute)
		if d.Full {
			in.LastFull = in.LastSuccess
		}
	}
	return runs, decisions
}

func TestDueHourlyPolledOverDaysWithTheMachineOff(t *testing.T) {
	utc := time.UTC
	tm := func(s string) time.Time { return at(t, utc, s) }
	from, to := tm("2026-11-10 00:00"), tm("2026-11-20 00:00")
	// Off for 4 days, from noon on the 13th to noon on the 17th.
	offDaily := [][2]time.Time{{tm("2026-11-13 12:00"), tm("2026-11-17 12:00")}}
	// Off from before Sunday the 15th's slot to 4 days and 1 hour after it.
	offWeekly := [][2]time.Time{{tm("2026-11-15 00:00"), tm("2026-11-19 04:00")}}
	daily := []string{"2026-11-10T03:00", "2026-11-11T03:00", "2026-11-12T03:00", "2026-11-13T03:00"}
	tests := []struct {
		name    string
		sched   string
		catchUp *Duration
		off     [][2]time.Time
		want    []string
		reasons map[string]string // poll -> reason
	}{
		{
			name: "daily without catch_up: the run missed while off waits for the next slot", sched: "daily 03:00", off: offDaily,
			want: append(slices.Clone(daily), "2026-11-18T03:00", "2026-11-19T03:00"),
			reasons: map[string]string{
				"2026-11-17 12:00": "not due: missed run 2026-11-17T03:00 is older than the default catch_up 1h; next run 2026-11-18T03:00",
			},
		},
		{
			name: "daily with catch_up 3d: the machine runs as soon as it is back", sched: "daily 03:00", catchUp: dur("3d"), off: offDaily,
			want: append(slices.Clone(daily), "2026-11-17T12:00", "2026-11-18T03:00", "2026-11-19T03:00"),
			reasons: map[string]string{
				"2026-11-17 12:00": "due: missed run 2026-11-17T03:00 caught up within catch_up 3d (last success 2026-11-13T03:04)",
				"2026-11-17 13:00": "not due: scheduled run 2026-11-17T03:00 done (last success 2026-11-17T12:04); next run 2026-11-18T03:00",
			},
		},
		{
			name: "daily with catch_up 5d is the same: catch_up counts from the latest missed slot, hours old", sched: "daily 03:00",
			catchUp: dur("5d"), off: offDaily,
			want: append(slices.Clone(daily), "2026-11-17T12:00", "2026-11-18T03:00", "2026-11-19T03:00"),
		},
		{
			name: "weekly with catch_up 3d: back 4 days after the slot, the run is not made", sched: "weekly sun 03:00",
			catchUp: dur("3d"), off: offWeekly,
			want: nil,
			reasons: map[string]string{
				"2026-11-19 04:00": "not due: missed run 2026-11-15T03:00 is older than catch_up 3d; next run 2026-11-22T03:00",
			},
		},
		{
			name: "weekly with catch_up 5d: back 4 days after the slot, the run is made", sched: "weekly sun 03:00",
			catchUp: dur("5d"), off: offWeekly,
			want: []string{"2026-11-19T04:00"},
			reasons: map[string]string{
				"2026-11-19 04:00": "due: missed run 2026-11-15T03:00 caught up within catch_up 5d (last success 2026-11-08T03:04)",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sim{
				in:   DueInput{Schedule: MustParseSchedule(tc.sched), CatchUp: tc.catchUp, LastSuccess: tm("2026-11-08 03:04")},
				from: from, to: to, step: time.Hour, off: tc.off,
			}
			if strings.HasPrefix(tc.sched, "daily") {
				s.in.LastSuccess = tm("2026-11-09 03:04")
			}
			runs, ds := s.run(t)
			if !slices.Equal(runs, tc.want) {
				t.Errorf("runs %v\nwant %v", runs, tc.want)
			}
			for poll, want := range tc.reasons {
				if got := ds[tm(poll)].Reason; got != want {
					t.Errorf("at %s: %q\nwant %q", poll, got, want)
				}
			}
		})
	}
}

func TestDueSimulations(t *testing.T) {
	utc := time.UTC
	tm := func(s string) time.Time { return at(t, utc, s) }
	days := func(from string, n int, clocks ...string) []string {
		var out []string
		d := tm(from + " 00:00")
		for range n {
			for _, c := range clocks {
				out = append(out, d.Format("2006-01-02T")+c)
			}
			d = d.AddDate(0, 0, 1)
		}
		return out
	}
	tests := []struct {
		name string
		sim  sim
		want []string
	}{
		{
			name: "a failed run is retried at every poll until it succeeds",
			sim: sim{
				in:   DueInput{Schedule: MustParseSchedule("daily 03:00"), CatchUp: dur("3h"), LastSuccess: tm("2026-11-09 03:04")},
				from: tm("2026-11-10 00:00"), to: tm("2026-11-12 00:00"), step: time.Hour,
				fails: []time.Time{tm("2026-11-10 03:00"), tm("2026-11-10 04:00")},
			},
			want: []string{"2026-11-10T03:00", "2026-11-10T04:00", "2026-11-10T05:00", "2026-11-11T03:00"},
		},
		{
			name: "failed runs are retried until the catch_up window closes, then the next slot",
			sim: sim{
				in:   DueInput{Schedule: MustParseSchedule("daily 03:00"), CatchUp: dur("3h"), LastSuccess: tm("2026-11-09 03:04")},
				from: tm("2026-11-10 00:00"), to: tm("2026-11-12 00:00"), step: time.Hour,
				fails: []time.Time{tm("2026-11-10 03:00"), tm("2026-11-10 04:00"), tm("2026-11-10 05:00"), tm("2026-11-10 06:00")},
			},
			want: []string{"2026-11-10T03:00", "2026-11-10T04:00", "2026-11-10T05:00", "2026-11-10T06:00", "2026-11-11T03:00"},
		},
		{
			name: "a daily slot inside a quiet window across midnight runs at its end with catch_up",
			sim: sim{
				in: DueInput{Schedule: MustParseSchedule("daily 03:00"), CatchUp: dur("4h"), Quiet: windows(t, "22:00-06:00"),
					LastSuccess: tm("2026-11-09 06:04")},
				from: tm("2026-11-10 00:00"), to: tm("2026-11-13 00:00"), step: 5 * time.Minute,
			},
			want: days("2026-11-10", 3, "06:00"),
		},
		{
			name: "without a schedule, polls run outside the quiet window only",
			sim: sim{
				in:   DueInput{Quiet: windows(t, "22:00-06:00"), LastSuccess: tm("2026-11-09 06:04")},
				from: tm("2026-11-10 00:00"), to: tm("2026-11-11 00:00"), step: 2 * time.Hour,
			},
			want: days("2026-11-10", 1, "06:00", "08:00", "10:00", "12:00", "14:00", "16:00", "18:00", "20:00"),
		},
		{
			name: "every 6h with a quiet window skips the slot inside it",
			sim: sim{
				in:   DueInput{Schedule: MustParseSchedule("every 6h"), Quiet: windows(t, "22:00-06:00"), LastSuccess: tm("2026-11-09 18:04")},
				from: tm("2026-11-10 00:00"), to: tm("2026-11-13 00:00"), step: time.Hour,
			},
			want: days("2026-11-10", 3, "06:00", "12:00", "18:00"),
		},
		{
			name: "every 6h with full_every 1M: the first run is full, then the first run a calendar month after the last full",
			sim: sim{
				in:   DueInput{Schedule: MustParseSchedule("every 6h"), FullEvery: dur("1M")},
				from: tm("2026-01-01 00:00"), to: tm("2026-03-12 00:00"), step: time.Hour,
			},
			want: func() []string {
				var out []string
				for _, r := range days("2026-01-01", 70, "00:00", "06:00", "12:00", "18:00") {
					switch r {
					case "2026-01-01T00:00", "2026-02-01T06:00", "2026-03-01T12:00":
						r += " full"
					}
					out = append(out, r)
				}
				return out
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs, _ := tc.sim.run(t)
			if !slices.Equal(runs, tc.want) {
				t.Errorf("runs %v\nwant %v", runs, tc.want)
			}
		})
	}
}

// TestDueProperties checks over random schedules, windows and times that
// Due is consistent with its own Next: a job is due exactly when Next is
// now, and when it is not due, it stays not due until Next and is due at
// Next.
func TestDueProperties(t *testing.T) {
	scheds := []string{"", "daily 03:00", "weekly sun 03:00", "monthly 31 03:00", "every 6h", "hourly :15", "30 2 * * 1-5", "daily 02:30"}
	catchUps := []string{"", "30m", "3h", "1d", "3d"}
	quiets := [][]string{nil, nil, {"22:00-06:00"}, {"01:00-03:00"}, {"22:00-02:00", "01:30-04:00"}, {"12:00-13:00", "23:00-01:00"}}
	locs := []*time.Location{time.UTC, mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York")}
	rng := rand.New(rand.NewSource(4))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for iter := range 1500 {
		loc := locs[rng.Intn(len(locs))]
		in := DueInput{Now: base.Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour)))).Truncate(time.Minute).In(loc)}
		if s := scheds[rng.Intn(len(scheds))]; s != "" {
			in.Schedule = MustParseSchedule(s)
		}
		if c := catchUps[rng.Intn(len(catchUps))]; c != "" {
			in.CatchUp = dur(c)
		}
		in.Quiet = windows(t, quiets[rng.Intn(len(quiets))]...)
		if rng.Intn(8) != 0 {
			in.LastSuccess = in.Now.Add(-time.Duration(rng.Int63n(int64(10 * 24 * time.Hour))))
		}
		d := Due(in)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d: %s catch_up %v quiet %v last %s now %s: %+v: %s", iter, in.Schedule, in.CatchUp, in.Quiet,
				in.LastSuccess, in.Now, d, fmt.Sprintf(format, args...))
		}
		if d.Due != d.Next.Equal(in.Now) || d.Due != strings.HasPrefix(d.Reason, "due:") {
			fail("Due, Next and Reason disagree")
		}
		if d.Due || d.Next.IsZero() {
			continue
		}
		if !d.Next.After(in.Now) {
			fail("Next is not in the future")
		}
		later := in
		later.Now = d.Next
		if !Due(later).Due {
			fail("not due at Next: %q", Due(later).Reason)
		}
		gap := d.Next.Sub(in.Now)
		for _, dt := range []time.Duration{gap - time.Second, time.Duration(rng.Int63n(int64(gap))), time.Duration(rng.Int63n(int64(gap)))} {
			if dt <= 0 {
				continue
			}
			later.Now = in.Now.Add(dt)
			if Due(later).Due {
				fail("due at %s, before Next", later.Now)
			}
		}
	}
}
