package runner

import (
	"strings"
	"testing"
	"time"
)

func TestMetricsTextFormat(t *testing.T) {
	end := time.Unix(1774926000, 0)
	out := string(Metrics([]*JobStatus{
		{Job: `site["blog"]`, Role: "primary", Last: &RunRecord{Start: end.Add(-2 * time.Second), End: end, Bytes: 10}, Snaps: 3, Held: -1},
		{Job: "a", Role: "replica", Held: 5, Quota: 100, Running: &LockHolder{PID: 1}},
	}))
	for _, want := range []string{
		"# HELP runner_job_last_success_timestamp_seconds When the job's last successful run ended.\n# TYPE runner_job_last_success_timestamp_seconds gauge\n" +
			`runner_job_last_success_timestamp_seconds{job="site[\"blog\"]",role="primary"} 1.774926e+09` + "\n",
		`runner_job_last_success_duration_seconds{job="site[\"blog\"]",role="primary"} 2` + "\n",
		`runner_job_held_bytes{job="a",role="replica"} 5` + "\n",
		`runner_job_running{job="a",role="replica"} 1` + "\n",
		`runner_job_running{job="site[\"blog\"]",role="primary"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// A job that never succeeded has no last-success sample, and no job
	// without a measured size gets a held_bytes sample.
	if strings.Contains(out, `runner_job_last_success_timestamp_seconds{job="a"`) || strings.Contains(out, `runner_job_held_bytes{job="site`) {
		t.Errorf("samples for unknown values:\n%s", out)
	}
}
