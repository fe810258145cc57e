package host_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/host"
	"github.com/backup-runner/runner/plugins/host/internal/testplugin"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Binaries built once for all tests: the test host (which is also the
// "runner executable" serving the built-in test plugin) and the external
// test plugin under two names.
var bin struct {
	testhost, alpha, beta string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runner-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, "building test binaries:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is needed to build the test plugins: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"./internal/testhost", "./internal/testplugin/plugmain")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	bin.testhost = filepath.Join(dir, "testhost")
	bin.alpha = filepath.Join(dir, "runner-plugin-alpha")
	bin.beta = filepath.Join(dir, "runner-plugin-beta")
	if err := os.Rename(filepath.Join(dir, "plugmain"), bin.alpha); err != nil {
		return err
	}
	return copyFile(bin.alpha, bin.beta, 0o755)
}

func copyFile(from, to string, mode os.FileMode) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, mode)
}

func sum(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// markers makes every test plugin process started from now on leave a
// marker file, and returns a function listing "name.pid" markers.
func markers(t *testing.T) func() []string {
	dir := t.TempDir()
	t.Setenv(testplugin.MarkerDirEnv, dir)
	return func() []string {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		sort.Strings(names)
		return names
	}
}

func markerPids(t *testing.T, ms []string) []int {
	var pids []int
	for _, m := range ms {
		pid, err := strconv.Atoi(m[strings.LastIndexByte(m, '.')+1:])
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

func markerNames(ms []string) []string {
	var names []string
	for _, m := range ms {
		names = append(names, m[:strings.LastIndexByte(m, '.')])
	}
	return names
}

// logBuffer collects JSON log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) records() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

func newCatalog(t *testing.T, opts host.Options) (*host.Catalog, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Dirs == nil {
		opts.Dirs = []string{}
	}
	if opts.SelfExe == "" {
		opts.SelfExe = bin.testhost
	}
	c := host.NewCatalog(opts)
	t.Cleanup(func() { c.Close() })
	return c, logs
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func waitGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin processes still running: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sink is a host CaptureWriter that counts and discards.
type sink struct {
	mu     sync.Mutex
	bytes  int64
	items  []string
	result *sdk.CaptureResult
}

func (s *sink) Tree(it sdk.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, "tree:"+it.Name)
	return nil
}

func (s *sink) Stream(it sdk.Item) (sdk.StreamWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, "stream:"+it.Name)
	return sinkStream{s}, nil
}

func (s *sink) Done(r sdk.CaptureResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.result = &r
	return nil
}

type sinkStream struct{ s *sink }

func (w sinkStream) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.bytes += int64(len(p))
	return len(p), nil
}
func (sinkStream) Close() error               { return nil }
func (sinkStream) CloseWithError(error) error { return nil }

func config(path string, size int64) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal(path), "size": cty.NumberIntVal(size)})
}

func capture(ctx context.Context, inst *host.Instance, typeName string, size int64) (*sink, error) {
	src, err := inst.Source(ctx, typeName)
	if err != nil {
		return nil, err
	}
	s := &sink{}
	err = src.Capture(ctx, sdk.Instance{Address: "source." + typeName + ".x", Config: config("/srv", size)}, s)
	return s, err
}

// ---------------------------------------------------------------- tests

func TestChecksumMismatchIsRefusedBeforeThePluginRuns(t *testing.T) {
	ctx := testCtx(t)
	started := markers(t)
	c, _ := newCatalog(t, host.Options{})
	wrong := strings.Repeat("ab", 32)
	if err := c.AddPinned("alpha", bin.alpha, wrong, "runner.hcl:3,1-17"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`plugin "alpha": checksum mismatch for %s: file has sha256 %s, config pins %s (plugin block at runner.hcl:3,1-17)`,
		bin.alpha, sum(t, bin.alpha), wrong)

	_, err := c.Launch(ctx, "alpha")
	if err == nil || err.Error() != want {
		t.Fatalf("launch:\n got %v\nwant %s", err, want)
	}
	_, err = c.BlockSchema(ctx, schema.KindSource, "alpha")
	if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, hcl.ErrNotProvided) {
		t.Fatalf("block schema: %v", err)
	}
	if err := c.CheckPinned(ctx); err == nil || err.Error() != want {
		t.Fatalf("check pinned: %v", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Err == nil || list[0].Err.Error() != want {
		t.Fatalf("list: %+v %v", list, err)
	}
	if got := started(); len(got) != 0 {
		t.Fatalf("the plugin ran: %v", got)
	}

	// The same plugin with the right checksum does run (and leaves its
	// marker), so the absence of a marker above means something.
	c2, _ := newCatalog(t, host.Options{})
	if err := c2.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:3,1-17"); err != nil {
		t.Fatal(err)
	}
	inst, err := c2.Launch(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if got := started(); !reflect.DeepEqual(got, []string{fmt.Sprintf("alpha.%d", inst.Pid())}) {
		t.Fatalf("markers %v", got)
	}
}

func TestAddPinnedRejectsBadBlocks(t *testing.T) {
	c, _ := newCatalog(t, host.Options{})
	good := sum(t, bin.alpha)
	for name, args := range map[string][3]string{
		"relative path": {"alpha", "runner-plugin-alpha", good},
		"short sum":     {"alpha", bin.alpha, "abc"},
		"bad name":      {"Alpha!", bin.alpha, good},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.AddPinned(args[0], args[1], args[2], "x.hcl:1"); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := c.AddPinned("alpha", bin.alpha, good, "x.hcl:1"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPinned("alpha", bin.alpha, good, "x.hcl:9"); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestRoutingAndResolver(t *testing.T) {
	ctx := testCtx(t)
	started := markers(t)
	dir := t.TempDir()
	if err := copyFile(bin.beta, filepath.Join(dir, "runner-plugin-beta"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not executable: listed with an error, never run.
	if err := os.WriteFile(filepath.Join(dir, "runner-plugin-broken"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Same name as the built-in: shadowed.
	if err := copyFile(bin.beta, filepath.Join(dir, "runner-plugin-builtin"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := newCatalog(t, host.Options{
		Builtins: []*sdk.Plugin{testplugin.New("builtin")},
		Dirs:     []string{filepath.Join(dir, "missing"), dir},
	})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}

	// Built-ins are read from their Go values, but pinned plugins are
	// looked at too (once), so that a type two plugins provide is caught;
	// directory plugins are not started.
	name, err := c.Provider(ctx, schema.KindSource, "builtin_exit")
	if err != nil || name != "builtin" {
		t.Fatalf("provider: %q %v", name, err)
	}
	if b, err := c.BlockSchema(ctx, schema.KindSource, "builtin"); err != nil || b.Attribute("path") == nil {
		t.Fatalf("builtin schema: %v %v", b, err)
	}
	if name, err := c.Provider(ctx, schema.KindSource, "alpha_hang"); err != nil || name != "alpha" {
		t.Fatalf("provider: %q %v", name, err)
	}
	if got := markerNames(started()); !reflect.DeepEqual(got, []string{"alpha"}) {
		t.Fatalf("started %v", got)
	}

	// Directory plugins only when nothing else provides.
	if name, err := c.Provider(ctx, schema.KindSource, "beta"); err != nil || name != "beta" {
		t.Fatalf("provider: %q %v", name, err)
	}
	if got := markerNames(started()); !reflect.DeepEqual(got, []string{"alpha", "beta"}) {
		t.Fatalf("started %v", got)
	}

	_, err = c.BlockSchema(ctx, schema.KindSource, "nope")
	if !errors.Is(err, hcl.ErrNotProvided) || !strings.Contains(err.Error(), "runner-plugin-broken is not an executable") {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := c.BlockSchema(ctx, schema.KindTarget, "alpha"); !errors.Is(err, hcl.ErrNotProvided) {
		t.Fatalf("wrong kind: %v", err)
	}
	types := c.BlockTypes(ctx, schema.KindSource)
	for _, want := range []string{"alpha", "alpha_exit", "beta_log", "builtin", "builtin_hang"} {
		if !contains(types, want) {
			t.Errorf("BlockTypes lacks %s: %v", want, types)
		}
	}

	// Functions run in the schema process, argument errors point at the
	// argument.
	fn, err := c.Function(ctx, "alpha_echo")
	if err != nil {
		t.Fatal(err)
	}
	v, err := fn.Call([]cty.Value{cty.StringVal("hi")})
	if err != nil || !v.RawEquals(cty.StringVal("alpha:hi")) {
		t.Fatalf("call: %#v %v", v, err)
	}
	_, err = fn.Call([]cty.Value{cty.StringVal("")})
	var ae function.ArgError
	if !errors.As(err, &ae) || ae.Index != 0 || !strings.Contains(err.Error(), `plugin "alpha": function alpha_echo: must not be empty`) {
		t.Fatalf("arg error: %#v", err)
	}
	fn, err = c.Function(ctx, "builtin_echo")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := fn.Call([]cty.Value{cty.StringVal("x")}); err != nil || v.AsString() != "builtin:x" {
		t.Fatalf("builtin function: %#v %v", v, err)
	}
	if _, err := c.Function(ctx, "nope"); !errors.Is(err, hcl.ErrNotProvided) {
		t.Fatalf("unknown function: %v", err)
	}

	for _, typeName := range []string{"alpha", "builtin", "beta"} {
		diags, err := c.ValidateBlock(ctx, schema.KindSource, typeName, config("relative", 1))
		if err != nil || len(diags) != 1 || !reflect.DeepEqual(diags[0].Path, []string{"path"}) {
			t.Fatalf("validate %s: %v %v", typeName, diags, err)
		}
	}

	// Launch gives a fresh process every time.
	i1, err := c.Launch(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	i2, err := c.Launch(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if i1.Pid() == i2.Pid() || i1.Pid() == 0 {
		t.Fatalf("pids %d %d", i1.Pid(), i2.Pid())
	}
	if _, err := c.Launch(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `plugin "nope": not found`) {
		t.Fatalf("launch unknown: %v", err)
	}

	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list {
		s := fmt.Sprintf("%s %s %s", p.Name, p.Origin, p.Version)
		if p.Shadowed != "" {
			s += " shadowed"
		}
		if p.Err != nil {
			s += " error"
		}
		if p.Err == nil && p.Shadowed == "" && (len(p.BlockTypes) != 5 || p.BlockTypes[0] != "source."+p.Name) {
			t.Errorf("%s: types %v", p.Name, p.BlockTypes)
		}
		got = append(got, s)
	}
	want := []string{
		"alpha config 0.0.1-test",
		"beta directory 0.0.1-test",
		"broken directory  error",
		"builtin built-in 0.0.1-test",
		"builtin directory  shadowed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("list:\n%s", strings.Join(got, "\n"))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestAmbiguousTypeIsAnError(t *testing.T) {
	ctx := testCtx(t)
	c, _ := newCatalog(t, host.Options{Builtins: []*sdk.Plugin{testplugin.New("alpha")}})
	// A second plugin serving the same definition provides the same
	// types under another name.
	dup := filepath.Join(t.TempDir(), "runner-plugin-alpha")
	if err := copyFile(bin.alpha, dup, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPinned("other", dup, sum(t, dup), "runner.hcl:5"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Provider(ctx, schema.KindSource, "alpha")
	if err == nil || !strings.Contains(err.Error(), `is provided by more than one plugin: "alpha" (built-in), "other" (`+dup+`)`) {
		t.Fatalf("got %v", err)
	}
}

func TestPinnedPluginReplacesBuiltinOfTheSameName(t *testing.T) {
	ctx := testCtx(t)
	started := markers(t)
	c, _ := newCatalog(t, host.Options{Builtins: []*sdk.Plugin{testplugin.New("alpha")}})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	inst, err := c.Launch(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	// The marker's pid is the pinned executable's, not "testhost
	// internal-plugin alpha".
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", inst.Pid()))
	if err != nil || exe != bin.alpha {
		t.Fatalf("launched %q (%v), want %s", exe, err, bin.alpha)
	}
	if got := started(); len(got) != 1 {
		t.Fatalf("started %v", got)
	}
}

func TestCrashFailsOnlyThatJob(t *testing.T) {
	ctx := testCtx(t)
	c, logs := newCatalog(t, host.Options{Builtins: []*sdk.Plugin{testplugin.New("builtin")}})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	other, err := c.Launch(ctx, "builtin")
	if err != nil {
		t.Fatal(err)
	}
	fn, err := c.Function(ctx, "alpha_echo")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		typeName string
		reason   string
	}{
		{"alpha_exit", "the plugin process exited during the call: exit status 3"},
		{"alpha_panic", "the plugin process exited during the call: exit status 2: panic: boom in a goroutine"},
	}
	for _, tt := range tests {
		t.Run(tt.typeName, func(t *testing.T) {
			job, err := c.Launch(ctx, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			defer job.Close()
			_, err = capture(ctx, job, tt.typeName, 4<<20)
			want := fmt.Sprintf(`plugin "alpha": capture source.%s.x: %s`, tt.typeName, tt.reason)
			if err == nil || err.Error() != want || !errors.Is(err, rpc.ErrCrashed) {
				t.Fatalf("\n got %v\nwant %s", err, want)
			}
			// Later calls on the dead instance fail fast, the same way.
			src, _ := job.Source(ctx, "alpha")
			if _, err := src.PlanCapture(ctx, sdk.Instance{Config: config("/", 1)}); !errors.Is(err, rpc.ErrCrashed) {
				t.Fatalf("after the crash: %v", err)
			}

			// The other job's plugin and the schema process carry on.
			s, err := capture(ctx, other, "builtin", 3<<20)
			if err != nil || s.bytes != 3<<20 || s.result == nil {
				t.Fatalf("other job: %+v %v", s, err)
			}
			if v, err := fn.Call([]cty.Value{cty.StringVal("x")}); err != nil || v.AsString() != "alpha:x" {
				t.Fatalf("schema process: %v", err)
			}
		})
	}

	// The panic reached the log, at error level, naming the plugin.
	found := false
	for _, rec := range logs.records() {
		if strings.HasPrefix(fmt.Sprint(rec["msg"]), "panic: boom in a goroutine") && rec["plugin"] == "alpha" && rec["level"] == "ERROR" {
			found = true
		}
	}
	if !found {
		t.Error("the panic is not in the log")
	}
}

func TestHangingCallsAreCutByTheirDeadline(t *testing.T) {
	ctx := testCtx(t)
	c, _ := newCatalog(t, host.Options{FunctionTimeout: 300 * time.Millisecond})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	job, err := c.Launch(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	src, err := job.Source(ctx, "alpha_hang")
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = src.PlanCapture(dctx, sdk.Instance{Address: "source.alpha_hang.h", Config: config("/", 1)})
	want := `plugin "alpha": plan capture source.alpha_hang.h: no answer before the deadline: context deadline exceeded`
	if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("\n got %v\nwant %s", err, want)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}

	fn, err := c.Function(ctx, "alpha_hang")
	if err != nil {
		t.Fatal(err)
	}
	_, err = fn.Call(nil)
	if err == nil || !strings.Contains(err.Error(), `plugin "alpha": function alpha_hang: no answer before the deadline`) {
		t.Fatalf("function: %v", err)
	}

	// The plugin is still there for other calls.
	if _, err := capture(ctx, job, "alpha", 1000); err != nil {
		t.Fatal(err)
	}
}

func TestCloseStopsEveryProcess(t *testing.T) {
	ctx := testCtx(t)
	started := markers(t)
	c, _ := newCatalog(t, host.Options{Builtins: []*sdk.Plugin{testplugin.New("builtin")}})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alpha", "alpha", "builtin"} {
		if _, err := c.Launch(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ValidateBlock(ctx, schema.KindSource, "alpha", config("/x", 1)); err != nil {
		t.Fatal(err)
	}
	hanging, err := c.Launch(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := hanging.Source(ctx, "alpha_hang")
	callErr := make(chan error, 1)
	go func() {
		callErr <- src.Capture(ctx, sdk.Instance{Address: "source.alpha_hang.h", Config: config("/", 1)}, &sink{})
	}()
	time.Sleep(200 * time.Millisecond) // let the call reach the plugin

	pids := markerPids(t, started())
	if len(pids) != 5 {
		t.Fatalf("started %v", started())
	}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
		}()
	}
	wg.Wait()
	waitGone(t, pids, 5*time.Second)

	select {
	case err := <-callErr:
		if !errors.Is(err, rpc.ErrCrashed) || !strings.Contains(err.Error(), "stopped by runner") {
			t.Fatalf("call in flight: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight did not end")
	}
	if _, err := c.Launch(ctx, "alpha"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("launch after close: %v", err)
	}
}

func TestPluginLogsReachTheRunnerLog(t *testing.T) {
	ctx := testCtx(t)
	c, logs := newCatalog(t, host.Options{})
	if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	job, err := c.Launch(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := job.Source(ctx, "alpha_log")
	if _, err := src.PlanCapture(ctx, sdk.Instance{Address: "source.alpha_log.l", Config: config("/", 1)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var hello, odd map[string]any
		for _, rec := range logs.records() {
			switch rec["msg"] {
			case "hello from plugin":
				hello = rec
			case "5":
				odd = rec
			}
		}
		if hello != nil && odd != nil {
			if hello["plugin"] != "alpha" || hello["level"] != "INFO" || hello["answer"] != float64(42) ||
				hello["address"] != "source.alpha_log.l" {
				t.Fatalf("record %v", hello)
			}
			// The line that would have crashed go-plugin's parser (and the
			// runner) is logged like any other.
			if odd["plugin"] != "alpha" || odd["level"] != "INFO" {
				t.Fatalf("record %v", odd)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no plugin log line in:\n%v", logs.records())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAPluginThatIsNotOneFailsToStart(t *testing.T) {
	ctx := testCtx(t)
	script := filepath.Join(t.TempDir(), "runner-plugin-fake")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'panic: not a plugin' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := newCatalog(t, host.Options{StartTimeout: 10 * time.Second})
	if err := c.AddPinned("fake", script, sum(t, script), "runner.hcl:1"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Launch(ctx, "fake")
	want := `plugin "fake": start ` + script + `: it did not answer the plugin handshake (is it a runner plugin, built for this system?); ` +
		`its last output: panic: not a plugin (plugin block at runner.hcl:1)`
	if err == nil || err.Error() != want {
		t.Fatalf("\n got %v\nwant %s", err, want)
	}
}

func TestServeRefusesAnInvalidPlugin(t *testing.T) {
	cmd := exec.Command(bin.testhost, host.InternalPluginArg, "Bad")
	cmd.Env = append(os.Environ(), rpc.Handshake.MagicCookieKey+"="+rpc.Handshake.MagicCookieValue)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 ||
		!strings.Contains(string(out), `runner plugin "Bad" is invalid`) || !strings.Contains(string(out), "lower-case") {
		t.Fatalf("%v: %s", err, out)
	}

	// Started by hand, a plugin says what it is and exits.
	out, err = exec.Command(bin.alpha).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("%v: %s", err, out)
	}
}

// runTestHost starts the test host, waits until it has launched its
// plugins and returns it with their pids.
func runTestHost(t *testing.T, args ...string) (*exec.Cmd, []int) {
	t.Helper()
	cmd := exec.Command(bin.testhost, args...)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var pids []int
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("test host ended before it was ready")
			}
			if line == "READY" {
				go func() {
					for range lines {
					}
				}()
				return cmd, pids
			}
			if p, ok := strings.CutPrefix(line, "PID "); ok {
				pid, _ := strconv.Atoi(p)
				pids = append(pids, pid)
			}
		case <-timeout:
			t.Fatal("test host not ready")
		}
	}
}

func TestNoPluginSurvivesTheRunner(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			started := markers(t)
			cmd, pids := runTestHost(t, "run", "alpha="+bin.alpha, "beta="+bin.beta)
			all := markerPids(t, started())
			// 3 job processes, and a schema process for each plugin.
			if len(pids) != 3 || len(all) != 6 {
				t.Fatalf("pids %v, markers %v", pids, started())
			}
			for _, pid := range all {
				if !alive(pid) {
					t.Fatalf("plugin %d not running", pid)
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			waitGone(t, all, 5*time.Second)
		})
	}

	t.Run("parent watch without Pdeathsig", func(t *testing.T) {
		cmd, pids := runTestHost(t, "raw", bin.alpha)
		if len(pids) != 1 {
			t.Fatalf("pids %v", pids)
		}
		// Let the plugin get to Serve before its parent goes.
		time.Sleep(500 * time.Millisecond)
		if !alive(pids[0]) {
			t.Fatal("plugin not running")
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		waitGone(t, pids, 5*time.Second)
	})
}

func TestCloseDuringLaunchLeavesNothingRunning(t *testing.T) {
	ctx := testCtx(t)
	started := markers(t)
	for i := 0; i < 6; i++ {
		c, _ := newCatalog(t, host.Options{})
		if err := c.AddPinned("alpha", bin.alpha, sum(t, bin.alpha), "runner.hcl:1"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Launch(ctx, "alpha")
			done <- err
		}()
		time.Sleep(time.Duration(i*15) * time.Millisecond)
		c.Close()
		select {
		case <-done: // launched and then stopped, or refused: both fine
		case <-time.After(30 * time.Second):
			t.Fatal("Launch did not return")
		}
	}
	waitGone(t, markerPids(t, started()), 5*time.Second)
}

func TestCatalogEdges(t *testing.T) {
	ctx := testCtx(t)

	t.Run("unusable built-ins do not stop the others", func(t *testing.T) {
		c := host.NewCatalog(host.Options{
			Builtins: []*sdk.Plugin{testplugin.New("Bad"), testplugin.New("ok"), testplugin.New("ok"), nil},
			Dirs:     []string{},
		})
		defer c.Close()
		if name, err := c.Provider(ctx, schema.KindSource, "ok"); err != nil || name != "ok" {
			t.Fatalf("provider: %q %v", name, err)
		}
		_, err := c.Launch(ctx, "ok")
		if err == nil || !strings.Contains(err.Error(), "Options.SelfExe") {
			t.Fatalf("launch without SelfExe: %v", err)
		}
		list, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range list {
			got = append(got, fmt.Sprintf("%s err=%v shadowed=%v", p.Name, p.Err != nil, p.Shadowed != ""))
		}
		want := []string{"<nil> err=true shadowed=false", "Bad err=true shadowed=false",
			"ok err=false shadowed=false", "ok err=false shadowed=true"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("list %v", got)
		}
	})

	t.Run("directories added by the configuration", func(t *testing.T) {
		d1, d2 := t.TempDir(), t.TempDir()
		if err := copyFile(bin.beta, filepath.Join(d1, "runner-plugin-beta"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(bin.alpha, filepath.Join(d2, "runner-plugin-alpha"), 0o755); err != nil {
			t.Fatal(err)
		}
		c, _ := newCatalog(t, host.Options{})
		c.AddDirs(d1)
		if name, err := c.Provider(ctx, schema.KindSource, "beta_log"); err != nil || name != "beta" {
			t.Fatalf("provider: %q %v", name, err)
		}
		// After the scan, added directories are scanned at once.
		c.AddDirs(d2)
		job, err := c.Launch(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		// One Instance serves every type of its plugin, routed by the
		// instance's type name.
		s := &sink{}
		if err := job.Capture(ctx, sdk.Instance{TypeName: "alpha", Address: "source.alpha.a", Config: config("/a", 10)}, s); err != nil || s.bytes != 10 {
			t.Fatalf("capture: %v %+v", err, s)
		}
		plan, err := job.PlanCapture(ctx, sdk.Instance{TypeName: "alpha_log", Config: config("/a", 10)})
		if err != nil || plan.Notes[0] != "mode log" {
			t.Fatalf("plan: %+v %v", plan, err)
		}
		if _, err := job.Prepare(ctx, sdk.Instance{TypeName: "alpha", Config: config("/a", 1)}, true); err == nil ||
			!strings.Contains(err.Error(), `plugin "alpha": provides no target type "alpha"`) {
			t.Fatalf("prepare: %v", err)
		}
	})
}

// An Instance serves every verb of every type of its plugin, routed by the
// instance's type name: what an engine needs from a job's plugin process.
var _ interface {
	PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error)
	Capture(context.Context, sdk.Instance, sdk.CaptureWriter) error
	Apply(context.Context, sdk.ApplyRequest, sdk.ItemReader) error
	Prepare(context.Context, sdk.Instance, bool) (sdk.Session, error)
	Up(context.Context, sdk.HookRequest) ([]string, error)
	Down(context.Context, sdk.HookRequest) ([]string, error)
	Notify(context.Context, sdk.Instance, sdk.Notification) error
	Close() error
} = (*host.Instance)(nil)
