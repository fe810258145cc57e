package policies

import (
	"fmt"
	"time"
)

// DefaultCatchUp is the catch_up window of a schedule that sets none. It
// is not zero so that "runner apply" polled by cron a little after the
// scheduled minute (every 5 minutes, every hour) still makes the run, and
// a failed run is retried at the next poll; it is short so that a machine
// that was off does not start last night's backup in the middle of the
// working day unless the policy asks for it with catch_up.
const DefaultCatchUp = time.Hour

// maxNextSteps bounds the search for the next due time. Each step skips
// at least one quiet window, so this is years of schedule.
const maxNextSteps = 1000

// DueInput is what Due needs to know about a job.
type DueInput struct {
	// Schedule says when runs are due. Nil: the job is due at every run
	// (outside quiet windows), for jobs that cron or a timer calls exactly
	// when they should run.
	Schedule Schedule
	// CatchUp is how late a scheduled run may still be made, counted from
	// the scheduled time; nil means DefaultCatchUp.
	CatchUp *Duration
	// Quiet windows are daily spans in which no job starts.
	Quiet []Window
	// LastSuccess is when the last successful run ended; zero if the job
	// never succeeded. Failed runs are not passed in: a failure never
	// makes a job look done.
	LastSuccess time.Time
	// FullEvery is how often a run re-reads every file instead of trusting
	// the change cache; nil: never by policy.
	FullEvery *Duration
	// LastFull is when the last successful full run ended; zero if none.
	LastFull time.Time
	// Now is the time of the decision; its location gives the wall clock
	// of schedules and quiet windows.
	Now time.Time
}

// DueDecision is Due's answer.
type DueDecision struct {
	Due    bool
	Reason string
	// Next is the first time the job is due, assuming no run before then:
	// Now when Due, zero if it never will be (every later slot falls in a
	// quiet window beyond the catch_up window, or the quiet windows cover
	// the whole day).
	Next time.Time
	// Full says whether a run now should be a full one (independent of
	// Due: it is for the run, if there is one).
	Full       bool
	FullReason string
}

// Due decides whether a job should run at in.Now. In order:
//
//   - Inside a quiet window nothing starts: not due, and the reason says
//     when the window ends.
//   - A job that never succeeded is due.
//   - Without a schedule, a job is due at every run.
//   - With a schedule, let s be the most recent scheduled time,
//     Schedule.Prev(now). The job is due if s is after the last success
//     and now is at most the catch_up window after s (calendar arithmetic,
//     now <= s + catch_up). So a missed run, because the machine was off
//     or the run failed, is made as long as the latest slot it missed is
//     within the window; older slots need not be made twice, as the next
//     run covers them. With a daily schedule and catch_up of a day or
//     more, a machine coming back from any outage runs at once; with
//     catch_up 3d and a weekly schedule, it runs only if it comes back
//     within 3 days of the slot.
//
// Only the last successful run counts, so a failed run is retried at every
// poll until it succeeds or the window closes.
func Due(in DueInput) DueDecision {
	now := in.Now
	var d DueDecision
	d.Full, d.FullReason = in.full()

	if w, ok := in.quietWindow(now); ok {
		end, ok := in.quietEnd(now)
		if !ok {
			d.Reason = fmt.Sprintf("not due: in quiet window %s, and the quiet windows cover the whole day", w)
			return d
		}
		d.Next = in.nextDue(end)
		d.Reason = fmt.Sprintf("not due: in quiet window %s until %s", w, end.In(now.Location()).Format("15:04"))
		if !d.Next.Equal(end) {
			d.Reason += "; " + in.nextRun(d.Next)
		}
		return d
	}
	if in.LastSuccess.IsZero() {
		d.Due, d.Next, d.Reason = true, now, "due: never succeeded"
		return d
	}
	if in.Schedule == nil {
		d.Due, d.Next = true, now
		d.Reason = "due: no schedule, due at every run (last success " + in.stamp(in.LastSuccess) + ")"
		return d
	}

	s := in.Schedule.Prev(now)
	switch {
	case s.IsZero():
		d.Next = in.nextDue(now)
		d.Reason = "not due: no scheduled run yet; " + in.nextRun(d.Next)
	case !s.After(in.LastSuccess):
		d.Next = in.nextDue(now)
		d.Reason = fmt.Sprintf("not due: scheduled run %s done (last success %s); %s",
			in.stamp(s), in.stamp(in.LastSuccess), in.nextRun(d.Next))
	case now.After(in.catchUp().AddTo(s)):
		d.Next = in.nextDue(now)
		d.Reason = fmt.Sprintf("not due: missed run %s is older than %s; %s",
			in.stamp(s), in.catchUpText(), in.nextRun(d.Next))
	case in.CatchUp != nil && now.Sub(s) > DefaultCatchUp:
		// Later than a poll would be: the machine was off or runs failed.
		d.Due, d.Next = true, now
		d.Reason = fmt.Sprintf("due: missed run %s caught up within %s (last success %s)",
			in.stamp(s), in.catchUpText(), in.stamp(in.LastSuccess))
	default:
		d.Due, d.Next = true, now
		d.Reason = fmt.Sprintf("due: scheduled %s at %s, last success %s",
			in.Schedule, in.stamp(s), in.stamp(in.LastSuccess))
	}
	return d
}

func (in DueInput) catchUp() Duration {
	if in.CatchUp != nil {
		return *in.CatchUp
	}
	return Duration{Clock: DefaultCatchUp}
}

func (in DueInput) catchUpText() string {
	if in.CatchUp != nil {
		return "catch_up " + in.CatchUp.String()
	}
	return "the default catch_up " + Duration{Clock: DefaultCatchUp}.String()
}

func (in DueInput) stamp(t time.Time) string { return stamp(t, in.Now.Location()) }

func (in DueInput) nextRun(next time.Time) string {
	if next.IsZero() {
		return "no later run is possible (every slot falls in a quiet window beyond the catch_up window)"
	}
	return "next run " + in.stamp(next)
}

// dueAt reports whether the job would be due at t if nothing ran before.
func (in DueInput) dueAt(t time.Time) bool {
	if _, quiet := in.quietWindow(t); quiet {
		return false
	}
	if in.LastSuccess.IsZero() || in.Schedule == nil {
		return true
	}
	s := in.Schedule.Prev(t)
	return !s.IsZero() && s.After(in.LastSuccess) && !t.After(in.catchUp().AddTo(s))
}

// nextDue returns the first time at or after from at which the job is
// due, assuming nothing runs before then; zero if none is found. The
// candidates are the scheduled slots and, for a slot inside a quiet
// window, the end of that window (due there if still within catch_up).
func (in DueInput) nextDue(from time.Time) time.Time {
	t := from
	if in.dueAt(t) {
		return t
	}
	if in.LastSuccess.IsZero() || in.Schedule == nil {
		// Due whenever it is not quiet, and t is quiet.
		end, ok := in.quietEnd(t)
		if !ok {
			return time.Time{}
		}
		return end
	}
	for range maxNextSteps {
		c := in.Schedule.Next(t)
		if c.IsZero() {
			return time.Time{}
		}
		if _, quiet := in.quietWindow(c); quiet {
			end, ok := in.quietEnd(c)
			if !ok {
				return time.Time{}
			}
			c = end
		}
		if in.dueAt(c) {
			return c
		}
		t = c
	}
	return time.Time{}
}

// quietWindow returns the first quiet window containing t.
func (in DueInput) quietWindow(t time.Time) (Window, bool) {
	t = t.In(in.Now.Location())
	for _, w := range in.Quiet {
		if w.Contains(t) {
			return w, true
		}
	}
	return Window{}, false
}

// quietEnd returns the first time at or after t outside every quiet
// window, following windows that overlap or touch ("22:00-02:00" and
// "01:00-06:00" end at 06:00). ok is false if the windows cover the whole
// day.
func (in DueInput) quietEnd(t time.Time) (time.Time, bool) {
	t = t.In(in.Now.Location())
	// Each hop ends one window; more hops than windows (twice, for a
	// window ending on the next day) means they go round the clock.
	for range 2*len(in.Quiet) + 2 {
		w, quiet := in.quietWindow(t)
		if !quiet {
			return t, true
		}
		t = windowEnd(w, t)
	}
	return time.Time{}, false
}

// windowEnd returns the first time after t at which the wall clock shows
// w's end: today or tomorrow.
func windowEnd(w Window, t time.Time) time.Time {
	y, m, d := t.Date()
	for i := range 2 {
		if e := wallTime(y, m, d+i, w.End/60, w.End%60, t.Location()); e.After(t) {
			return e
		}
	}
	return wallTime(y, m, d+2, w.End/60, w.End%60, t.Location())
}

// full decides whether a run now re-reads everything.
func (in DueInput) full() (bool, string) {
	if in.FullEvery == nil {
		return false, "incremental: no full_every"
	}
	every := "full_every " + in.FullEvery.String()
	if in.LastFull.IsZero() {
		return true, "full: no full run yet (" + every + ")"
	}
	at := in.FullEvery.AddTo(in.LastFull)
	if !in.Now.Before(at) {
		return true, fmt.Sprintf("full: last full %s, %s reached at %s", in.stamp(in.LastFull), every, in.stamp(at))
	}
	return false, fmt.Sprintf("incremental: last full %s, next full from %s (%s)", in.stamp(in.LastFull), in.stamp(at), every)
}
