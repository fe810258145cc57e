// Package policies holds the time and size arithmetic behind a job's policy:
// operator durations ("3d", "1M"), sizes ("1000MB", "2GiB"), schedules
// ("daily 03:00", "every 6h", cron expressions) and quiet windows.
//
// Everything here is a pure function of its inputs: no clock, no files, no
// configuration language. The engine passes "now" in, so every decision can
// be reproduced in a test and explained in a plan.
//
// Calendar units matter: "1M" is a calendar month, not 30 days, so a
// Duration is applied to a time.Time with AddTo rather than converted to a
// time.Duration. Schedules work on the wall clock of the location of the
// time they are given, so "daily 03:00" stays at 03:00 across daylight
// saving changes.
//
// Retention.Decide turns a job's snapshots, its keep rules and quota into
// one Decision per snapshot, each with the reasons that decided it ("keep:
// daily #3 (2026-11-19)", "forget: over quota 1210 MB > 1000 MB, oldest
// first"), so a plan can show why every snapshot stays or goes. Due decides
// from a schedule, catch_up and quiet windows and the last successful run
// whether a job runs now, why, and when it will next, and whether the run
// is a full one (full_every).
package policies
