package runner

import (
	"fmt"
	"os"
	"time"
)

// NowEnv names the environment variable that sets the engine's clock for
// a whole process: a testing and rehearsal aid, so that "apply every hour
// for 90 days" takes seconds and a restore "--at 40d" can be rehearsed.
const NowEnv = "RUNNER_NOW"

// ClockFromEnv returns the clock the engine should use: the system's, or,
// when RUNNER_NOW is set (RFC 3339), one that starts at that time and runs
// on from it at the real pace, so that times within the process still
// order (a snapshot's end after its start). Durations measured with the
// monotonic clock stay real either way.
func ClockFromEnv() (func() time.Time, error) {
	s := os.Getenv(NowEnv)
	if s == "" {
		return time.Now, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not an RFC 3339 time such as 2026-01-31T04:00:00Z: %w", NowEnv, s, err)
	}
	// Keep the location of the wall clock (schedules and quiet windows are
	// local times) but the instant RUNNER_NOW names.
	t = t.In(time.Local)
	base := time.Now()
	return func() time.Time { return t.Add(time.Since(base)) }, nil
}
