package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/hcl/hcltest"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/local"
	"github.com/backup-runner/runner/plugins/builtin"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/runner"
)

// inProcess launches plugins as Go values in this process: the engine's
// logic is under test here; the process boundary is covered by plugins/host
// and the e2e tests.
type inProcess struct {
	plugins  []*sdk.Plugin
	launches atomic.Int32
}

func (l *inProcess) Launch(_ context.Context, kind schema.Kind, typeName string) (runner.PluginClient, error) {
	l.launches.Add(1)
	for _, p := range l.plugins {
		c := &client{p: p}
		switch kind {
		case schema.KindSource:
			if _, ok := p.Sources[typeName]; ok {
				return c, nil
			}
		case schema.KindTarget:
			if _, ok := p.Targets[typeName]; ok {
				return c, nil
			}
		case schema.KindHook:
			if _, ok := p.Hooks[typeName]; ok {
				return c, nil
			}
		case schema.KindNotify:
			if _, ok := p.Notifiers[typeName]; ok {
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("no plugin provides %s %q", kind, typeName)
}

type client struct{ p *sdk.Plugin }

func (c *client) PlanCapture(ctx context.Context, in sdk.Instance) (*sdk.CapturePlan, error) {
	return c.p.Sources[in.TypeName].PlanCapture(ctx, in)
}
func (c *client) Capture(ctx context.Context, in sdk.Instance, w sdk.CaptureWriter) error {
	return c.p.Sources[in.TypeName].Capture(ctx, in, w)
}
func (c *client) Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	a, ok := c.p.Sources[req.Instance.TypeName].(sdk.Applier)
	if !ok {
		return errors.New("source type cannot apply snapshots")
	}
	return a.Apply(ctx, req, r)
}
func (c *client) Prepare(ctx context.Context, in sdk.Instance, ro bool) (sdk.Session, error) {
	return c.p.Targets[in.TypeName].Prepare(ctx, in, ro)
}
func (c *client) Up(ctx context.Context, r sdk.HookRequest) ([]string, error) {
	return c.p.Hooks[r.Instance.TypeName].Up(ctx, r)
}
func (c *client) Down(ctx context.Context, r sdk.HookRequest) ([]string, error) {
	return c.p.Hooks[r.Instance.TypeName].Down(ctx, r)
}
func (c *client) Notify(ctx context.Context, in sdk.Instance, n sdk.Notification) error {
	return c.p.Notifiers[in.TypeName].Notify(ctx, in, n)
}
func (c *client) Close() error { return nil }

// testSource is source "test": its behaviour is chosen by its mode.
type testSource struct {
	mu      sync.Mutex
	running int
	peak    int
	// applied records what Apply received: "tree NAME: FILE=CONTENT ..." or
	// "stream NAME: CONTENT".
	applied []string
	req     sdk.ApplyRequest
}

func (*testSource) Schema() *schema.Block {
	return &schema.Block{Attributes: []*schema.Attribute{
		{Name: "mode", Type: cty.String, Required: true},
		{Name: "dir", Type: cty.String, Description: "mode tree: the directory captured"},
	}}
}

// Apply records the items it is given: a tree item's files (read from the
// staging directory the host made) and a stream item's bytes.
func (s *testSource) Apply(_ context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.req = req
	for {
		it, body, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if it.Kind == sdk.ItemTree {
			var files []string
			err := filepath.WalkDir(it.Tree.Root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				rel, _ := filepath.Rel(it.Tree.Root, p)
				files = append(files, rel+"="+string(b))
				return err
			})
			if err != nil {
				return err
			}
			s.applied = append(s.applied, "tree "+it.Name+": "+strings.Join(files, " "))
			continue
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		s.applied = append(s.applied, "stream "+it.Name+": "+string(b))
	}
}

func (*testSource) PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error) {
	return &sdk.CapturePlan{Items: []sdk.ItemEstimate{{Name: "data", Kind: sdk.ItemStream, Bytes: 5}}}, nil
}

func (s *testSource) Capture(ctx context.Context, in sdk.Instance, w sdk.CaptureWriter) error {
	s.mu.Lock()
	s.running++
	s.peak = max(s.peak, s.running)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.running--; s.mu.Unlock() }()
	switch mode := in.Config.GetAttr("mode").AsString(); mode {
	case "ok":
		time.Sleep(50 * time.Millisecond)
		st, err := w.Stream(sdk.Item{Name: "data", Kind: sdk.ItemStream})
		if err != nil {
			return err
		}
		_, _ = st.Write([]byte("hello"))
		if err := st.Close(); err != nil {
			return err
		}
		return w.Done(sdk.CaptureResult{})
	case "tree":
		dir := in.Config.GetAttr("dir").AsString()
		if err := w.Tree(sdk.Item{Name: dir, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: dir}}); err != nil {
			return err
		}
		st, err := w.Stream(sdk.Item{Name: "db", Kind: sdk.ItemStream})
		if err != nil {
			return err
		}
		_, _ = st.Write([]byte("rows"))
		if err := st.Close(); err != nil {
			return err
		}
		return w.Done(sdk.CaptureResult{Meta: map[string]string{"k": "v"}})
	case "fail":
		return errors.New("database went away")
	case "panic":
		panic("source bug")
	case "block":
		<-ctx.Done()
		return ctx.Err()
	case "barrier":
		// Wait until three captures run at once, so the test knows the
		// target is held by all of them.
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.mu.Lock()
			peak := s.peak
			s.mu.Unlock()
			if peak >= 3 {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("the three captures never ran together")
			}
			time.Sleep(time.Millisecond)
		}
		return w.Done(sdk.CaptureResult{})
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
}

type fixture struct {
	nas    *local.Store
	eng    *runner.Engine
	src    *testSource
	log    string
	launch *inProcess
}

func newFixture(t *testing.T, body string, parallel int) *fixture {
	t.Helper()
	dir := t.TempDir()
	logf := filepath.Join(t.TempDir(), "hooks.log")
	nas := t.TempDir()
	src := &testSource{}
	test := &sdk.Plugin{Name: "test", Sources: map[string]sdk.Source{"test": src}}
	plugins := append(builtin.All(), test)
	text := fmt.Sprintf(`
runner {
  parallel  = %d
  state_dir = %q
}
target "nas" "t" {
  path = %q
}
locals {
  log = %q
}
`, parallel, t.TempDir(), nas, logf) + body
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := config.Load(context.Background(), dir, config.Options{Resolver: hcltest.New(plugins...)})
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	st, err := local.New(nas)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Init(context.Background(), st, repo.InitOptions{Unencrypted: true}); err != nil {
		t.Fatal(err)
	}
	l := &inProcess{plugins: plugins}
	return &fixture{eng: &runner.Engine{Config: cfg, Plugins: l, DownTimeout: 10 * time.Second}, src: src, log: logf, launch: l, nas: st}
}

func (f *fixture) run(t *testing.T, ctx context.Context, opts runner.ApplyOptions) map[string]*runner.JobResult {
	t.Helper()
	jobs, err := f.eng.SelectJobs(nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := f.eng.Plan(ctx, jobs, runner.PlanOptions{})
	out := map[string]*runner.JobResult{}
	for _, r := range f.eng.Apply(ctx, plan, jobs, opts) {
		out[r.Job] = r
	}
	return out
}

func (f *fixture) hookLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

const recordingHooks = `
hook "exec" "outer" {
  before = ["/bin/sh", "-c", "echo outer-up >> ${local.log}"]
  always = ["/bin/sh", "-c", "echo outer-down-$RUNNER_STATUS >> ${local.log}"]
}
hook "exec" "inner" {
  before = ["/bin/sh", "-c", "echo inner-up-$RUNNER_JOB >> ${local.log}"]
  always = ["/bin/sh", "-c", "echo inner-down-$RUNNER_STATUS >> ${local.log}"]
}
`

func TestHooksWrapJobInOrderAndComeDownOnFailure(t *testing.T) {
	for _, tc := range []struct {
		mode, status, log string
	}{
		{"ok", "success", "outer-up inner-up-j inner-down-success outer-down-success"},
		{"fail", "failure", "outer-up inner-up-j inner-down-failure outer-down-failure"},
		{"panic", "failure", "outer-up inner-up-j inner-down-failure outer-down-failure"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f := newFixture(t, recordingHooks+fmt.Sprintf(`
source "test" "s" {
  mode = %q
}
job "j" {
  source = source.test.s
  target = target.nas.t
  hooks  = [hook.exec.outer, hook.exec.inner]
}
`, tc.mode), 1)
			res := f.run(t, context.Background(), runner.ApplyOptions{})["j"]
			if string(res.Status) != tc.status {
				t.Fatalf("status %s (%s), want %s", res.Status, res.Error, tc.status)
			}
			if got := f.hookLog(t); got != tc.log {
				t.Fatalf("hooks ran:\n %s\nwant\n %s", got, tc.log)
			}
		})
	}
}

func TestFailedHookUpStopsJobAndUndoesOnlyWhatWasUp(t *testing.T) {
	f := newFixture(t, recordingHooks+`
hook "exec" "broken" {
  before = ["/bin/sh", "-c", "exit 3"]
  always = ["/bin/sh", "-c", "echo broken-down >> ${local.log}"]
}
source "test" "s" {
  mode = "ok"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  hooks  = [hook.exec.outer, hook.exec.broken, hook.exec.inner]
}
`, 1)
	res := f.run(t, context.Background(), runner.ApplyOptions{})["j"]
	if res.Status != runner.StatusFailure || !strings.Contains(res.Error, "hook.exec.broken up") {
		t.Fatalf("result %+v", res)
	}
	if got, want := f.hookLog(t), "outer-up outer-down-failure"; got != want {
		t.Fatalf("hooks ran: %s, want %s", got, want)
	}
}

func TestOneFailingJobDoesNotStopOthersAndParallelIsRespected(t *testing.T) {
	var body strings.Builder
	for i := 0; i < 6; i++ {
		mode := "ok"
		if i == 2 {
			mode = "fail"
		}
		fmt.Fprintf(&body, "source \"test\" \"s%d\" {\n  mode = %q\n}\njob \"j%d\" {\n  source = source.test.s%d\n  target = target.nas.t\n}\n", i, mode, i, i)
	}
	f := newFixture(t, body.String(), 2)
	res := f.run(t, context.Background(), runner.ApplyOptions{})
	for i := 0; i < 6; i++ {
		r := res[fmt.Sprintf("j%d", i)]
		want := runner.StatusSuccess
		if i == 2 {
			want = runner.StatusFailure
		}
		if r.Status != want {
			t.Errorf("j%d: %s (%s), want %s", i, r.Status, r.Error, want)
		}
		if want == runner.StatusSuccess && (r.Items != 1 || r.Bytes != 5 || r.Snapshot == "") {
			t.Errorf("j%d: %d items, %d bytes, snapshot %q", i, r.Items, r.Bytes, r.Snapshot)
		}
	}
	// Every successful job left a snapshot with its stream in the repository.
	r, err := repo.Open(context.Background(), f.nas, repo.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	sns, err := r.ListSnapshots(context.Background())
	if err != nil || len(sns) != 5 {
		t.Fatalf("%d snapshots (%v), want 5", len(sns), err)
	}
	for _, sn := range sns {
		if len(sn.Items) != 1 || sn.Items[0].Kind != repo.ItemStream || sn.Items[0].Size != 5 {
			t.Errorf("snapshot of %s: items %+v", sn.Job, sn.Items)
		}
	}
	if f.src.peak > 2 {
		t.Errorf("%d captures ran at once with parallel = 2", f.src.peak)
	}
	if f.src.peak < 2 {
		t.Errorf("captures never overlapped (peak %d): parallel = 2 is not used", f.src.peak)
	}
}

func TestInterruptedRunStillBringsHooksDown(t *testing.T) {
	f := newFixture(t, recordingHooks+`
source "test" "s" {
  mode = "block"
}
job "j" {
  source = source.test.s
  target = target.nas.t
  hooks  = [hook.exec.outer]
}
`, 1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	res := f.run(t, ctx, runner.ApplyOptions{})["j"]
	if res.Status != runner.StatusFailure {
		t.Fatalf("an interrupted job must fail, got %+v", res)
	}
	if got, want := f.hookLog(t), "outer-up outer-down-failure"; got != want {
		t.Fatalf("hooks ran: %s, want %s", got, want)
	}
}

func TestDisabledAndReplicaJobsAreSkippedWithReasons(t *testing.T) {
	f := newFixture(t, `
source "test" "s" {
  mode = "ok"
}
job "off" {
  source  = source.test.s
  target  = target.nas.t
  enabled = false
}
job "copy" {
  source = source.test.s
  target = target.nas.t
  role   = "replica"
}
`, 1)
	off, _ := f.eng.SelectJobs([]string{"off"})
	plan := f.eng.Plan(context.Background(), off, runner.PlanOptions{Full: true})
	if jp := plan.Jobs[0]; jp.Action != runner.ActionSkip || !strings.Contains(jp.Reason, "disabled") {
		t.Errorf("disabled: %s %q", jp.Action, jp.Reason)
	}
	if n := f.launch.launches.Load(); n != 0 {
		t.Errorf("a disabled job launched %d plugins", n)
	}
	// A replica with nothing to apply yet says so, after reading the target.
	cp, _ := f.eng.SelectJobs([]string{"copy"})
	plan = f.eng.Plan(context.Background(), cp, runner.PlanOptions{Full: true})
	if jp := plan.Jobs[0]; jp.Action != runner.ActionSkip || !strings.Contains(jp.Reason, "the primary has taken no snapshot of this job yet") {
		t.Errorf("replica: %s %q %s", jp.Action, jp.Reason, jp.Error)
	}
	if plan.Changes() {
		t.Errorf("plan has changes: %+v", plan.Jobs)
	}
}

func TestSelectJobsByName(t *testing.T) {
	f := newFixture(t, `
source "test" "s" {
  for_each = toset(["a", "b"])
  mode     = "ok"
}
job "site" {
  for_each = source.test.s
  source   = each.value
  target   = target.nas.t
}
`, 1)
	for _, name := range []string{`site["a"]`, "site[a]", "site.a"} {
		jobs, err := f.eng.SelectJobs([]string{name})
		if err != nil || len(jobs) != 1 || jobs[0].Name != `site["a"]` {
			t.Errorf("%s: %v %v", name, jobs, err)
		}
	}
	if _, err := f.eng.SelectJobs([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `no job "nope"`) {
		t.Errorf("unknown job: %v", err)
	}
}

// Jobs of one run share their target: it comes up once for all of them and
// down after the last, so a NAS is never unmounted under a running job.
func TestJobsShareTheirTargetWithinARun(t *testing.T) {
	var body strings.Builder
	body.WriteString(`
hook "exec" "mount" {
  before = ["/bin/sh", "-c", "echo target-up >> ${local.log}"]
  always = ["/bin/sh", "-c", "echo target-down-$RUNNER_STATUS >> ${local.log}"]
}
`)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&body, "source \"test\" \"s%d\" {\n  mode = \"barrier\"\n}\njob \"j%d\" {\n  source = source.test.s%d\n  target = target.nas.t\n}\n", i, i, i)
	}
	f := newFixture(t, body.String(), 3)
	f.eng.Config.Targets[0].Instances[0].Hooks = []*config.Instance{f.eng.Config.Instance("hook.exec.mount")}
	for name, r := range f.run(t, context.Background(), runner.ApplyOptions{}) {
		if r.Status != runner.StatusSuccess {
			t.Errorf("%s: %s %s", name, r.Status, r.Error)
		}
	}
	if got, want := f.hookLog(t), "target-up target-down-success"; got != want {
		t.Fatalf("target hooks ran: %s, want %s", got, want)
	}
}
