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
// Retention (keep_daily, keep_within, max_size, ...) will live here too,
// built on the same Duration and on the time bucketing the schedules use;
// the names are chosen so that retention's decisions (with their reasons)
// sit beside them: Duration, Schedule, Window, and later Retention.
package policies
