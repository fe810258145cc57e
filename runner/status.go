package runner

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
)

// JobStatus is what runner status shows about a job, from its state and
// its lock only: no target is touched, so status is instant and safe to
// call from monitoring.
type JobStatus struct {
	Job     string `json:"job"`
	Role    string `json:"role"`
	Enabled bool   `json:"enabled"`
	Target  string `json:"target"`
	// Activity is "running" (with Running) or "idle".
	Activity string      `json:"activity"`
	Running  *LockHolder `json:"running,omitempty"`
	Last     *RunRecord  `json:"last_success,omitempty"`
	Failure  *RunRecord  `json:"last_failure,omitempty"`
	Failures int         `json:"consecutive_failures"`
	Due      bool        `json:"due"`
	NextDue  time.Time   `json:"next_due,omitzero"`
	Reason   string      `json:"reason"`
	Quota    int64       `json:"quota_bytes,omitempty"`
	Snaps    int         `json:"snapshots"`
	Held     int64       `json:"held_bytes"`
	// Applied is what a replica applied last.
	Applied *ReplicaPosition `json:"applied,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// Status reports on the given jobs.
func (e *Engine) Status(jobs []*config.Job) []*JobStatus {
	now := e.now()
	var out []*JobStatus
	for _, j := range jobs {
		js := &JobStatus{Job: j.Name, Role: string(j.Role), Enabled: j.Enabled, Target: j.Target.Address, Activity: "idle", Held: -1}
		if j.Policy != nil {
			js.Quota = j.Policy.MaxSize
		}
		out = append(out, js)
		st, err := e.LoadState(j.Name)
		if err != nil {
			js.Error = err.Error()
			continue
		}
		js.Last, js.Failure, js.Failures, js.Applied = st.LastSuccess, st.LastFailure, st.Failures, st.Replica
		if st.LastSuccess != nil {
			js.Snaps, js.Held = st.Snapshots, st.HeldBytes
		}
		if h, held := e.JobLockHolder(j.Name); held {
			js.Activity, js.Running = "running", &h
		}
		switch {
		case !j.Enabled:
			js.Reason = "disabled"
		default:
			d := due(j, st, now)
			js.Due, js.NextDue, js.Reason = d.Due, d.Next, d.Reason
		}
	}
	return out
}

// Metrics renders job statuses in the Prometheus text exposition format
// (version 0.0.4), for node_exporter's textfile collector.
func Metrics(sts []*JobStatus) []byte {
	type metric struct {
		name, help, typ string
		value           func(*JobStatus) (float64, bool)
	}
	ts := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	metrics := []metric{
		{"runner_job_last_success_timestamp_seconds", "When the job's last successful run ended.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Last == nil {
				return 0, false
			}
			return ts(s.Last.End), true
		}},
		{"runner_job_last_failure_timestamp_seconds", "When the job's last failed run ended.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Failure == nil {
				return 0, false
			}
			return ts(s.Failure.End), true
		}},
		{"runner_job_consecutive_failures", "Failed runs since the last success.", "gauge", func(s *JobStatus) (float64, bool) {
			return float64(s.Failures), true
		}},
		{"runner_job_last_success_duration_seconds", "How long the last successful run took.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Last == nil {
				return 0, false
			}
			return s.Last.End.Sub(s.Last.Start).Seconds(), true
		}},
		{"runner_job_last_success_bytes", "Bytes the last successful run captured.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Last == nil {
				return 0, false
			}
			return float64(s.Last.Bytes), true
		}},
		{"runner_job_last_success_added_bytes", "New bytes the last successful run added to the repository.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Last == nil {
				return 0, false
			}
			return float64(s.Last.AddedBytes), true
		}},
		{"runner_job_next_due_timestamp_seconds", "When the job is next due.", "gauge", func(s *JobStatus) (float64, bool) {
			return ts(s.NextDue), !s.NextDue.IsZero()
		}},
		{"runner_job_snapshots", "Snapshots of the job after its last successful run.", "gauge", func(s *JobStatus) (float64, bool) {
			return float64(s.Snaps), s.Last != nil
		}},
		{"runner_job_held_bytes", "Stored bytes the job's snapshots hold (jobs with a max_size quota).", "gauge", func(s *JobStatus) (float64, bool) {
			return float64(s.Held), s.Held >= 0
		}},
		{"runner_job_quota_bytes", "The job's max_size quota.", "gauge", func(s *JobStatus) (float64, bool) {
			return float64(s.Quota), s.Quota > 0
		}},
		{"runner_job_running", "1 while a run of the job is under way.", "gauge", func(s *JobStatus) (float64, bool) {
			if s.Running != nil {
				return 1, true
			}
			return 0, true
		}},
	}
	sorted := append([]*JobStatus(nil), sts...)
	sort.Slice(sorted, func(i, k int) bool { return sorted[i].Job < sorted[k].Job })
	var b bytes.Buffer
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for _, s := range sorted {
			if v, ok := m.value(s); ok {
				fmt.Fprintf(&b, "%s{job=%s,role=%s} %s\n", m.name, labelValue(s.Job), labelValue(s.Role), strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
	}
	return b.Bytes()
}

// labelValue quotes a label value as the text format wants: backslash,
// double quote and newline escaped.
func labelValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// WriteMetrics writes the metrics of every job of the configuration to
// runner { metrics_file }, atomically (node_exporter must never read half
// a file). Nothing happens when it is not set.
func (e *Engine) WriteMetrics() error {
	path := e.Config.Runner.MetricsFile
	if path == "" {
		return nil
	}
	jobs := append([]*config.Job(nil), e.Config.Jobs...)
	if err := writeFileAtomic(path, Metrics(e.Status(jobs)), 0o644); err != nil {
		return fmt.Errorf("metrics_file: %w", err)
	}
	return nil
}
