package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/runner"
)

// clock is a settable engine clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const dailyKeepTwo = `
policy "p" {
  schedule  = "daily 03:00"
  catch_up  = "1d"
  keep_last = 2
}
source "test" "s" {
  mode = "ok"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  policy = policy.p
}
`

func TestApplyRunsOnlyWhatIsDueAndRecordsIt(t *testing.T) {
	f := newFixture(t, dailyKeepTwo, 1)
	c := &clock{t: at("2026-03-01T02:00:00Z")}
	f.eng.Now = c.now
	ctx := context.Background()

	// Never succeeded: due at once.
	if r := f.run(t, ctx, runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess || r.Snapshot == "" {
		t.Fatalf("first run: %+v", r)
	}
	// An hour later the 03:00 run is not yet due... then it is.
	c.t = at("2026-03-01T02:30:00Z")
	if r := f.run(t, ctx, runner.ApplyOptions{})["j"]; r.Status != runner.StatusSkipped || !strings.Contains(r.Reason, "not due") {
		t.Fatalf("before 03:00: %+v", r)
	}
	c.t = at("2026-03-01T03:10:00Z")
	if r := f.run(t, ctx, runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess {
		t.Fatalf("03:10: %+v", r)
	}
	st, err := f.eng.LoadState("j")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSuccess == nil || !st.LastSuccess.Start.Equal(c.t) || st.Running != nil {
		t.Fatalf("state after success: %+v", st)
	}

	// A failing source never makes the job look done: it stays due.
	c.t = at("2026-03-02T03:05:00Z")
	f.eng.Config.Sources[0].Instances[0].Config = withMode(f.eng.Config.Sources[0].Instances[0].Config, "fail")
	if r := f.run(t, ctx, runner.ApplyOptions{})["j"]; r.Status != runner.StatusFailure {
		t.Fatalf("failing run: %+v", r)
	}
	c.t = at("2026-03-02T04:05:00Z")
	f.eng.Config.Sources[0].Instances[0].Config = withMode(f.eng.Config.Sources[0].Instances[0].Config, "ok")
	r := f.run(t, ctx, runner.ApplyOptions{})["j"]
	if r.Status != runner.StatusSuccess || !r.Recovered {
		t.Fatalf("retry after failure: %+v", r)
	}
	// keep_last 2: the third snapshot made the first go, and prune ran.
	if len(r.Forgotten) != 1 || !strings.Contains(strings.Join(r.Notes, " "), "pruned target.nas.t") {
		t.Fatalf("retention: forgotten %+v, notes %q", r.Forgotten, r.Notes)
	}
	st, _ = f.eng.LoadState("j")
	if st.LastFailure == nil || st.LastFailure.Error == "" || st.Failures != 0 {
		t.Fatalf("state after recovery: %+v", st)
	}
	if got := f.snapshotCount(t); got != 2 {
		t.Fatalf("%d snapshots left, want 2", got)
	}
}

func (f *fixture) snapshotCount(t *testing.T) int {
	t.Helper()
	n := 0
	err := f.nas.List(context.Background(), "snapshots/", func(repo.ObjectInfo) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestASecondRunOfAJobIsSkippedWhileTheFirstHoldsItsLock(t *testing.T) {
	f := newFixture(t, dailyKeepTwo, 1)
	lock, err := f.eng.LockJob(context.Background(), "j", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]
	if r.Status != runner.StatusSkipped || !strings.Contains(r.Reason, "already running (pid") {
		t.Fatalf("second run: %+v", r)
	}
	if h, held := f.eng.JobLockHolder("j"); !held || h.PID != os.Getpid() {
		t.Fatalf("lock holder %+v held %v", h, held)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	if r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess {
		t.Fatalf("after unlock: %+v", r)
	}
}

func TestAnInterruptedRunIsResumedAndSaysSo(t *testing.T) {
	f := newFixture(t, dailyKeepTwo, 1)
	c := &clock{t: at("2026-03-01T03:05:00Z")}
	f.eng.Now = c.now
	if r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess {
		t.Fatal(r.Error)
	}
	// A run that died (kill -9) leaves its mark in the state and no lock.
	st, _ := f.eng.LoadState("j")
	killed := at("2026-03-02T03:01:00Z")
	st.Running = &runner.Running{PID: 999999, Host: "h", Start: killed}
	if err := f.eng.SaveState(st); err != nil {
		t.Fatal(err)
	}
	// Even outside the schedule's window the interrupted work is finished.
	c.t = at("2026-03-02T02:00:00Z")
	plan := f.eng.Plan(context.Background(), mustJobs(t, f), runner.PlanOptions{})
	if jp := plan.Jobs[0]; jp.Action != runner.ActionCapture || jp.Interrupted == nil || !strings.Contains(jp.Reason, "resuming") {
		t.Fatalf("plan: %+v", jp)
	}
	r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]
	if r.Status != runner.StatusSuccess || !r.Resumed.Equal(killed) || !strings.Contains(strings.Join(r.Notes, " "), "resuming the interrupted run") {
		t.Fatalf("resumed run: %+v", r)
	}
	st, _ = f.eng.LoadState("j")
	if st.Running != nil {
		t.Fatalf("running mark left: %+v", st.Running)
	}
}

func TestSavedPlanIsRefusedWhenTheJobRanSince(t *testing.T) {
	f := newFixture(t, dailyKeepTwo, 1)
	c := &clock{t: at("2026-03-01T03:05:00Z")}
	f.eng.Now = c.now
	jobs := mustJobs(t, f)
	plan := f.eng.Plan(context.Background(), jobs, runner.PlanOptions{Full: true})
	b, _ := json.Marshal(plan)
	saved := &runner.Plan{}
	if err := json.Unmarshal(b, saved); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.CheckSavedPlan(saved); err != nil {
		t.Fatalf("fresh plan refused: %v", err)
	}
	// Another run happens in between.
	if r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess {
		t.Fatal(r.Error)
	}
	if err := f.eng.CheckSavedPlan(saved); err == nil || !strings.Contains(err.Error(), "job j ran") {
		t.Fatalf("stale plan: %v", err)
	}
	res := f.eng.Apply(context.Background(), saved, jobs, runner.ApplyOptions{Saved: true})
	if res[0].Status != runner.StatusFailure || !strings.Contains(res[0].Error, "stale") {
		t.Fatalf("applying the stale plan: %+v", res[0])
	}
}

func TestMinFreeRatioRefusesARunBeforeItStarts(t *testing.T) {
	f := newFixture(t, `
policy "big" {
  max_size = "1000PB"
}
source "test" "s" {
  mode = "ok"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  policy = policy.big
}
`, 1)
	f.eng.Config.Targets[0].Instances[0].MinFreeRatio = 10
	r := f.run(t, context.Background(), runner.ApplyOptions{})["j"]
	if r.Status != runner.StatusFailure || !strings.Contains(r.Error, "below min_free_ratio 10 x the largest quota") {
		t.Fatalf("run: %+v", r)
	}
	if n := f.snapshotCount(t); n != 0 {
		t.Fatalf("%d snapshots written", n)
	}
	plan := f.eng.Plan(context.Background(), mustJobs(t, f), runner.PlanOptions{Full: true})
	if jp := plan.Jobs[0]; jp.Action != runner.ActionError || !strings.Contains(jp.Error, "min_free_ratio") {
		t.Fatalf("plan: %+v", jp)
	}
}

func mustJobs(t *testing.T, f *fixture) []*config.Job {
	t.Helper()
	jobs, err := f.eng.SelectJobs(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// withMode returns a test source configuration with another mode.
func withMode(v cty.Value, mode string) cty.Value {
	m := v.AsValueMap()
	m["mode"] = cty.StringVal(mode)
	return cty.ObjectVal(m)
}

// after and always commands see what the job did.
func TestHooksAfterTheJobSeeItsOutcome(t *testing.T) {
	f := newFixture(t, `
hook "exec" "report" {
  after  = ["/bin/sh", "-c", "test -n \"$RUNNER_SNAPSHOT\" && echo after-$RUNNER_STATUS-files-$RUNNER_FILES-bytes-$RUNNER_BYTES >> ${local.log}"]
  always = ["/bin/sh", "-c", "echo always-$RUNNER_JOB-error-[$RUNNER_ERROR] | tr ' ' _ >> ${local.log}"]
}
source "test" "s" {
  mode = "ok"
}
source "test" "bad" {
  mode = "fail"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  hooks  = [hook.exec.report]
}
job "k" {
  source = source.test.bad
  target = target.nas.t
  hooks  = [hook.exec.report]
}
`, 1)
	f.run(t, context.Background(), runner.ApplyOptions{})
	got := f.hookLog(t)
	for _, want := range []string{"after-success-files-0-bytes-5", "always-j-error-[]", "always-k-error-[capture_source.test.bad:_database_went_away]"} {
		if !strings.Contains(got, want) {
			t.Errorf("hook log %q lacks %q", got, want)
		}
	}
}

// A job's notifiers hear about a failure, the recovery after it, and the
// snapshots retention forgot, through a real webhook on loopback.
func TestNotificationsOfFailureRecoveryAndForget(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Event, Job, Subject string
			Fields              map[string]string
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, p.Event+":"+p.Job+":"+p.Fields["status"])
		mu.Unlock()
	}))
	defer srv.Close()
	f := newFixture(t, fmt.Sprintf(`
notify "webhook" "ops" {
  url    = %q
  events = ["failure", "recovery", "forget"]
}
policy "p" {
  keep_last = 1
}
source "test" "s" {
  mode = "fail"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  policy = policy.p
  notify = [notify.webhook.ops]
}
`, srv.URL), 1)
	ctx := context.Background()
	f.run(t, ctx, runner.ApplyOptions{})
	f.eng.Config.Sources[0].Instances[0].Config = withMode(f.eng.Config.Sources[0].Instances[0].Config, "ok")
	f.run(t, ctx, runner.ApplyOptions{}) // recovery
	f.run(t, ctx, runner.ApplyOptions{}) // success (not sent) and forget
	want := []string{"failure:j:failure", "recovery:j:success", "forget:j:"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("notifications %q, want %q", got, want)
	}
}

// A restore through the source gives it each tree item staged (restored
// and verified by the host) and each stream item as bytes, with the
// snapshot's metadata and the restore options; the staging directory is
// gone afterwards.
func TestRestoreThroughSourceStagesTrees(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"a.txt": "alpha", "sub/b.txt": "beta"} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, fmt.Sprintf(`
source "test" "s" {
  mode = "tree"
  dir  = %q
}
job "j" {
  source = source.test.s
  target = target.nas.t
}
`, data), 1)
	ctx := context.Background()
	if r := f.run(t, ctx, runner.ApplyOptions{})["j"]; r.Status != runner.StatusSuccess {
		t.Fatal(r.Error)
	}
	jr, err := f.eng.OpenJobRepository(ctx, f.eng.Config.Jobs[0], repo.LockShared, "restore")
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close(true)
	sn, err := runner.SelectSnapshot(ctx, jr.Repo, "j", "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.RestoreThroughSource(ctx, jr.Repo, f.eng.Config.Jobs[0], sn, runner.SourceRestoreOptions{Options: map[string]string{"force": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tree " + data + ": a.txt=alpha sub/b.txt=beta", "stream db: rows"}
	if strings.Join(f.src.applied, "|") != strings.Join(want, "|") {
		t.Fatalf("applied %q, want %q", f.src.applied, want)
	}
	if f.src.req.SnapshotMeta["k"] != "v" || f.src.req.Options["force"] != "true" {
		t.Fatalf("request: %+v", f.src.req)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.eng.Config.Runner.StateDir, "restore")); len(ents) != 0 {
		t.Fatalf("staging left behind: %v", ents)
	}

	// A dry run and the restore after it share one staging: the tree is
	// restored once, and the same root reaches the plugin both times.
	stage := f.eng.NewStaging()
	f.src.applied = nil
	for _, dry := range []bool{true, false} {
		if _, err := f.eng.RestoreThroughSource(ctx, jr.Repo, f.eng.Config.Jobs[0], sn, runner.SourceRestoreOptions{DryRun: dry, Staging: stage}); err != nil {
			t.Fatal(err)
		}
		// A marker of this staging: a restaged tree would have a.txt back.
		staged, _ := filepath.Glob(filepath.Join(f.eng.Config.Runner.StateDir, "restore", "stage-*", "*", "*", "a.txt"))
		for _, p := range staged {
			_ = os.Remove(p)
		}
	}
	want = []string{"tree " + data + ": a.txt=alpha sub/b.txt=beta", "stream db: rows", "tree " + data + ": sub/b.txt=beta", "stream db: rows"}
	if strings.Join(f.src.applied, "|") != strings.Join(want, "|") {
		t.Fatalf("with a shared staging, applied %q, want %q (the tree staged once)", f.src.applied, want)
	}
	if err := stage.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.eng.Config.Runner.StateDir, "restore")); len(ents) != 0 {
		t.Fatalf("staging left behind after Close: %v", ents)
	}
}

// withAttr returns a configuration object with one attribute replaced.
func withAttr(v cty.Value, name string, val cty.Value) cty.Value {
	m := v.AsValueMap()
	m[name] = val
	return cty.ObjectVal(m)
}

// A primary and a replica on one target: the replica applies each new
// snapshot once, refuses to overwrite a copy someone changed until forced,
// and the primary's retention keeps what the replica has not applied.
func TestReplicaAppliesNewSnapshotsAndGuardsItsCopy(t *testing.T) {
	pdata, rdata := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(pdata, "post", "v1")
	write(rdata, "post", "old copy")
	body := func(dir, role string) string {
		return fmt.Sprintf(`
policy "p" {
  keep_last = 1
}
source "test" "s" {
  mode = "tree"
  dir  = %q
}
job "site" {
  source = source.test.s
  target = target.nas.t
  policy = policy.p
  role   = %q
}
`, dir, role)
	}
	prim := newFixture(t, body(pdata, "primary"), 1)
	repl := newFixture(t, body(rdata, "replica"), 1)
	// One NAS for both servers.
	nasPath := prim.eng.Config.Targets[0].Instances[0].Config.GetAttr("path")
	repl.eng.Config.Targets[0].Instances[0].Config = withAttr(repl.eng.Config.Targets[0].Instances[0].Config, "path", nasPath)
	repl.nas = prim.nas
	ctx := context.Background()
	onPrimary := func() *runner.JobResult {
		t.Helper()
		t.Setenv("RUNNER_HOSTNAME", "web1")
		r := prim.run(t, ctx, runner.ApplyOptions{})["site"]
		if r.Status != runner.StatusSuccess {
			t.Fatalf("primary: %+v", r)
		}
		return r
	}
	onReplica := func(force bool) *runner.JobResult {
		t.Helper()
		t.Setenv("RUNNER_HOSTNAME", "web2")
		jobs, _ := repl.eng.SelectJobs(nil)
		plan := repl.eng.Plan(ctx, jobs, runner.PlanOptions{Force: force})
		return repl.eng.Apply(ctx, plan, jobs, runner.ApplyOptions{})[0]
	}

	s1 := onPrimary()
	r := onReplica(false)
	if r.Status != runner.StatusSuccess || r.Snapshot != s1.Snapshot || len(repl.src.applied) != 2 {
		t.Fatalf("first apply: %+v, applied %q", r, repl.src.applied)
	}
	if !strings.Contains(strings.Join(r.Notes, " "), "first apply on this replica") {
		t.Errorf("notes: %q", r.Notes)
	}
	if r := onReplica(false); r.Status != runner.StatusSkipped || !strings.Contains(r.Reason, "replica is current") {
		t.Fatalf("second run: %+v", r)
	}

	// A new snapshot reaches the replica; its unchanged copy lets it apply.
	write(pdata, "post", "v2")
	s2 := onPrimary()
	if r := onReplica(false); r.Status != runner.StatusSuccess || r.Snapshot != s2.Snapshot {
		t.Fatalf("apply of the second snapshot: %+v", r)
	}

	// Someone edits the replica: the next apply refuses, naming the file.
	write(rdata, "post", "edited on the replica")
	write(pdata, "post", "v3")
	s3 := onPrimary()
	_ = s3
	if len(s3.Forgotten) != 1 || s3.Forgotten[0].Snapshot != s2.Snapshot {
		t.Fatalf("primary forgot %+v; want %s, which the replica has applied", s3.Forgotten, s2.Snapshot[:8])
	}
	r = onReplica(false)
	if r.Status != runner.StatusFailure || !strings.Contains(r.Error, "changed since it applied snapshot") || !strings.Contains(r.Error, "/post") {
		t.Fatalf("apply over a changed replica: %+v", r)
	}
	// The primary's retention (keep_last 1) keeps s3, which the replica
	// has not applied, besides the newest; nor does it touch the replica's
	// safety snapshot of its edited copy.
	write(pdata, "post", "v4")
	s4 := onPrimary()
	if len(s4.Forgotten) != 0 {
		t.Fatalf("primary forgot %+v; s3 %s is not applied yet (s2 %s, s1 %s)", s4.Forgotten, s3.Snapshot[:8], s2.Snapshot[:8], s1.Snapshot[:8])
	}

	// -force overwrites the changed copy after keeping it in a safety snapshot.
	st, _ := repl.eng.LoadState("site")
	jobs, _ := repl.eng.SelectJobs(nil)
	t.Setenv("RUNNER_HOSTNAME", "web2")
	plan := repl.eng.Plan(ctx, jobs, runner.PlanOptions{Force: true})
	r = repl.eng.Apply(ctx, plan, jobs, runner.ApplyOptions{})[0]
	if r.Status != runner.StatusSuccess || r.Snapshot != s4.Snapshot || !strings.Contains(strings.Join(r.Notes, " "), "overwriting local changes") {
		t.Fatalf("forced apply: %+v (state before %+v)", r, st.Replica)
	}
}
