package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Ninety simulated days of "runner apply" from cron every hour, under
// RUNNER_NOW: a daily 03:00 schedule with a one-day catch_up window, a quiet
// window from 07:00 to 23:00, a machine that is off for four days and comes
// back in the middle of a working day, a failing run that is retried the
// next hour, and a quota that keeps fewer snapshots than keep_daily would.
// The test checks the exact runs made and the exact snapshots left.
func TestNinetyDaysOfHourlyApply(t *testing.T) {
	data, nas, state := t.TempDir(), t.TempDir(), t.TempDir()
	const dayFile = 256 << 10 // each day adds one incompressible file of 256 KiB
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
runner {
  state_dir    = %q
  metrics_file = "%s/runner.prom"
}
target "nas" "home" {
  path = %q
}
source "files" "data" {
  paths = [%q]
}
policy "daily" {
  schedule  = "daily 03:00"
  catch_up  = "1d"
  quiet     = ["07:00-23:00"]
  keep_daily = 7
  # Six day files (6 x 256 KiB) fit, seven do not: the quota, not
  # keep_daily, decides how many snapshots stay.
  max_size  = "1600KiB"
}
job "data" {
  source = source.files.data
  target = target.nas.home
  policy = policy.daily
}
`, state, state, nas, data)})
	mustInit(t, dir)

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	offFrom := time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	offUntil := time.Date(2026, 2, 14, 10, 0, 0, 0, time.UTC) // back at 10:00, inside the quiet window
	failAt := time.Date(2026, 1, 21, 3, 0, 0, 0, time.UTC)    // the source's directory is missing then
	end := start.AddDate(0, 0, 90)

	dayName := func(d time.Time) string { return "day-" + d.Format("2006-01-02") }
	var runs, failures []string
	for now := start; now.Before(end); now = now.Add(time.Hour) {
		if !now.Before(offFrom) && now.Before(offUntil) {
			continue // the machine is off: no cron, no changes
		}
		if now.Hour() == 1 {
			// The day's change: a new file, and those older than two days go.
			rnd := rand.New(rand.NewSource(now.Unix()))
			b := make([]byte, dayFile)
			rnd.Read(b)
			if err := os.WriteFile(filepath.Join(data, dayName(now)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name() < dayName(now.AddDate(0, 0, -2)) {
					if err := os.Remove(filepath.Join(data, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if now.Equal(failAt) {
			if err := os.Rename(data, data+".away"); err != nil {
				t.Fatal(err)
			}
		}
		env := []string{"RUNNER_NOW=" + now.Format(time.RFC3339), "TZ=UTC"}
		r := runner(t, env, "-C", dir, "-json", "apply")
		if now.Equal(failAt) {
			if err := os.Rename(data+".away", data); err != nil {
				t.Fatal(err)
			}
		}
		var out struct {
			Jobs []struct {
				Status string
				Error  string
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Jobs) != 1 {
			t.Fatalf("%s: apply output: %v\n%s", now, err, r)
		}
		stamp := now.Format("01-02 15:04")
		switch out.Jobs[0].Status {
		case "success":
			if r.code != 0 {
				t.Fatalf("%s: success but exit %d", now, r.code)
			}
			runs = append(runs, stamp)
		case "failure":
			if r.code != 3 {
				t.Fatalf("%s: failure but exit %d", now, r.code)
			}
			failures = append(failures, stamp)
		case "skipped":
			if r.code != 0 {
				t.Fatalf("%s: skipped but exit %d", now, r.code)
			}
		default:
			t.Fatalf("%s: %s", now, r)
		}
	}

	// The runs an operator expects: the first call (never succeeded), then
	// 03:00 every day; the failed 01-21 run retried at 04:00; nothing while
	// the machine is off; the missed 02-14 run caught up when the quiet
	// window ends at 23:00.
	want := []string{"01-01 00:00"}
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		switch {
		case !d.Before(offFrom) && d.Before(offUntil.Truncate(24*time.Hour)):
		case d.Equal(offUntil.Truncate(24 * time.Hour)):
			want = append(want, d.Format("01-02")+" 23:00")
		case d.Equal(failAt.Truncate(24 * time.Hour)):
			want = append(want, d.Format("01-02")+" 04:00")
		default:
			want = append(want, d.Format("01-02")+" 03:00")
		}
	}
	if !slices.Equal(runs, want) {
		t.Errorf("runs made:\n%s\nwant:\n%s", strings.Join(runs, ", "), strings.Join(want, ", "))
	}
	if !slices.Equal(failures, []string{"01-21 03:00"}) {
		t.Errorf("failed runs: %q", failures)
	}

	// keep_daily 7 would keep 03-25..03-31; the quota keeps the four
	// newest, whose data (day files 03-26..03-31) is six files.
	r := runner(t, nil, "-C", dir, "-json", "snapshots", "data")
	if r.code != 0 {
		t.Fatalf("snapshots: %s", r)
	}
	var sns []struct{ Time time.Time }
	if err := json.Unmarshal([]byte(r.stdout), &sns); err != nil {
		t.Fatalf("snapshots -json: %v\n%s", err, r)
	}
	var left []string
	for _, sn := range sns {
		left = append(left, sn.Time.UTC().Format("01-02 15:04"))
	}
	if w := []string{"03-28 03:00", "03-29 03:00", "03-30 03:00", "03-31 03:00"}; !slices.Equal(left, w) {
		t.Errorf("snapshots left: %q, want %q", left, w)
	}
	// status and the metrics file say the same, from runner's state alone.
	r = runner(t, []string{"RUNNER_NOW=2026-03-31T12:00:00Z", "TZ=UTC"}, "-C", dir, "-json", "status")
	var st []struct {
		Snapshots int       `json:"snapshots"`
		Held      int64     `json:"held_bytes"`
		NextDue   time.Time `json:"next_due"`
		Failures  int       `json:"consecutive_failures"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 1 {
		t.Fatalf("status -json: %v\n%s", err, r)
	}
	if st[0].Snapshots != 4 || st[0].Held < 6*dayFile || st[0].Held > 1600<<10 || !st[0].NextDue.Equal(time.Date(2026, 4, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("status: %+v", st[0])
	}
	prom, err := os.ReadFile(filepath.Join(state, "runner.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`runner_job_snapshots{job="data",role="primary"} 4`,
		`runner_job_consecutive_failures{job="data",role="primary"} 0`,
		`runner_job_last_success_timestamp_seconds{job="data",role="primary"} 1.7749`,
		"# TYPE runner_job_held_bytes gauge",
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, prom)
		}
	}

	// Everything forgotten was pruned: the repository holds little more
	// than the six day files, and check finds it sound.
	if r := runner(t, nil, "-C", dir, "check", "data"); r.code != 0 {
		t.Errorf("check: %s", r)
	}
	var size int64
	_ = filepath.Walk(filepath.Join(nas, "data"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	if size > 7*dayFile {
		t.Errorf("repository data holds %d bytes after pruning, want at most %d", size, 7*dayFile)
	}
}
