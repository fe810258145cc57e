package sdktest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

func start(t *testing.T) (*rpc.Client, *demoState) {
	t.Helper()
	st := &demoState{canceled: make(chan struct{})}
	return sdktest.Start(t, newDemo(st)), st
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func demoConfig(path string, size int64, failStream bool, uid cty.Value) cty.Value {
	expect := cty.NullVal(cty.Object(map[string]cty.Type{"uid": cty.Number}))
	if uid != cty.NilVal {
		expect = cty.ObjectVal(map[string]cty.Value{"uid": uid})
	}
	return cty.ObjectVal(map[string]cty.Value{
		"path":        cty.StringVal(path),
		"size":        cty.NumberIntVal(size),
		"fail_stream": cty.BoolVal(failStream),
		"expect":      expect,
	})
}

func TestSchemaListsEveryTypeAndFunction(t *testing.T) {
	c, _ := start(t)
	s, err := c.GetSchema(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.PluginName != "demo" || s.PluginVersion != "1.2.3" {
		t.Errorf("name/version: %q %q", s.PluginName, s.PluginVersion)
	}
	var types []string
	for _, bt := range s.BlockTypes {
		types = append(types, bt.Kind.String()+"."+bt.TypeName)
	}
	want := []string{"source.demo", "source.panicky", "source.slow", "target.mem", "hook.flag", "notify.log"}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}
	b := s.BlockType(schema.KindSource, "demo")
	if b == nil || b.Attribute("path") == nil || !b.Attribute("path").Required {
		t.Fatalf("source demo schema: %+v", b)
	}
	if !b.ImpliedType().Equals((&demoSource{}).Schema().ImpliedType()) {
		t.Error("schema changed on the way")
	}
	if n := s.BlockType(schema.KindNotify, "log"); n == nil || !n.Attribute("token").Sensitive {
		t.Error("sensitive flag lost")
	}
	f, ok := s.Function("repeat")
	if !ok || len(f.Params) != 2 || !f.ReturnType.Equals(cty.String) {
		t.Errorf("function repeat: %+v", f)
	}
}

func TestValidateReturnsDiagnosticsWithAttributePaths(t *testing.T) {
	c, _ := start(t)
	ctx := ctxT(t)
	diags, err := c.ValidateConfig(ctx, schema.KindSource, "demo", demoConfig("relative", 0, false, cty.NumberIntVal(0)))
	if err != nil {
		t.Fatal(err)
	}
	want := schema.Diagnostics{
		schema.Errorf([]string{"path"}, "path must be absolute"),
		schema.Errorf([]string{"expect", "uid"}, "uid 0 is root"),
	}
	if !reflect.DeepEqual(diags, want) {
		t.Fatalf("got %#v", diags)
	}
	diags, err = c.ValidateConfig(ctx, schema.KindSource, "demo", demoConfig("/srv", 0, false, cty.NumberIntVal(33)))
	if err != nil || len(diags) != 0 {
		t.Fatalf("valid config: %v %v", diags, err)
	}
	// A type without a Validate method has nothing to say.
	diags, err = c.ValidateConfig(ctx, schema.KindTarget, "mem", cty.ObjectVal(map[string]cty.Value{"root": cty.StringVal("x")}))
	if err != nil || len(diags) != 0 {
		t.Fatalf("target: %v %v", diags, err)
	}
	// A config of the wrong shape is a diagnostic, not a crash.
	diags, err = c.ValidateConfig(ctx, schema.KindSource, "demo", cty.StringVal("nonsense"))
	if err != nil || !diags.HasErrors() {
		t.Fatalf("wrong shape: %v %v", diags, err)
	}
	_, err = c.ValidateConfig(ctx, schema.KindSource, "nope", cty.EmptyObjectVal)
	if err == nil || !strings.Contains(err.Error(), `plugin "demo"`) || !strings.Contains(err.Error(), `no source type "nope"`) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestCallFunction(t *testing.T) {
	c, _ := start(t)
	ctx := ctxT(t)
	v, err := c.CallFunction(ctx, "repeat", []cty.Value{cty.StringVal("ab"), cty.NumberIntVal(3)})
	if err != nil || !v.RawEquals(cty.StringVal("ababab")) {
		t.Fatalf("got %#v, %v", v, err)
	}
	// Arguments are converted to the parameter types.
	v, err = c.CallFunction(ctx, "repeat", []cty.Value{cty.StringVal("x"), cty.StringVal("2")})
	if err != nil || !v.RawEquals(cty.StringVal("xx")) {
		t.Fatalf("converted: got %#v, %v", v, err)
	}

	tests := []struct {
		name    string
		fn      string
		args    []cty.Value
		argIdx  int // -1: not an argument error
		message string
	}{
		{"error names the argument", "repeat", []cty.Value{cty.StringVal("x"), cty.NumberIntVal(-1)}, 1, "must not be negative"},
		{"null argument", "repeat", []cty.Value{cty.NullVal(cty.String), cty.NumberIntVal(1)}, 0, "must not be null"},
		{"unconvertible argument", "repeat", []cty.Value{cty.StringVal("x"), cty.StringVal("many")}, 1, "a number is required"},
		{"wrong arity", "repeat", []cty.Value{cty.StringVal("x")}, -1, "wrong number of arguments"},
		{"panic", "boom", nil, -1, "function exploded"},
		{"unknown function", "nope", nil, -1, `no function "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CallFunction(ctx, tt.fn, tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.message) || !strings.Contains(err.Error(), `plugin "demo"`) {
				t.Fatalf("got %v", err)
			}
			var ae *sdk.ArgError
			if got := errors.As(err, &ae); got != (tt.argIdx >= 0) || (got && ae.Index != tt.argIdx) {
				t.Fatalf("ArgError %v (%+v), want index %d", got, ae, tt.argIdx)
			}
		})
	}
}

// recorder is a host-side CaptureWriter keeping what it receives.
type recorder struct {
	mu      sync.Mutex
	trees   []sdk.Item
	streams map[string]*recStream
	order   []string
	result  *sdk.CaptureResult
	failAt  int64 // fail a stream write after this many bytes (0: never)
}

type recStream struct {
	item   sdk.Item
	n      int64
	h      hash.Hash
	closed bool
	err    error
	r      *recorder
}

func (r *recorder) Tree(item sdk.Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trees = append(r.trees, item)
	r.order = append(r.order, "tree:"+item.Name)
	return nil
}

func (r *recorder) Stream(item sdk.Item) (sdk.StreamWriter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams == nil {
		r.streams = map[string]*recStream{}
	}
	s := &recStream{item: item, h: sha256.New(), r: r}
	r.streams[item.Name] = s
	r.order = append(r.order, "stream:"+item.Name)
	return s, nil
}

func (r *recorder) Done(res sdk.CaptureResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.result = &res
	r.order = append(r.order, "done")
	return nil
}

func (s *recStream) Write(p []byte) (int, error) {
	if s.r.failAt > 0 && s.n+int64(len(p)) > s.r.failAt {
		return 0, errors.New("host disk full")
	}
	s.n += int64(len(p))
	s.h.Write(p)
	return len(p), nil
}
func (s *recStream) Close() error                   { s.closed = true; return nil }
func (s *recStream) CloseWithError(err error) error { s.closed, s.err = true, err; return nil }

func demoHash(size int64) []byte {
	h := sha256.New()
	buf := make([]byte, 0, 1<<16)
	for i := int64(0); i < size; i++ {
		buf = append(buf, demoByte(i))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum(nil)
}

func TestCaptureTreeAndMultiMegabyteStream(t *testing.T) {
	c, _ := start(t)
	ctx := ctxT(t)
	src, err := c.Source(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	const size = 5<<20 + 12345
	inst := sdk.Instance{Address: "source.demo.db", Config: demoConfig("/srv/data", size, false, cty.NilVal)}

	plan, err := src.PlanCapture(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Items) != 2 || plan.Items[1].Bytes != size || plan.Items[0].Detail != "/srv/data" ||
		plan.Notes[0] != "would dump source.demo.db" {
		t.Fatalf("plan: %+v", plan)
	}

	rec := &recorder{}
	if err := src.Capture(ctx, inst, rec); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tree:files", "stream:dump", "done"}; !reflect.DeepEqual(rec.order, want) {
		t.Fatalf("order %v", rec.order)
	}
	tree := rec.trees[0]
	if tree.Kind != sdk.ItemTree || tree.Tree.Root != "/srv/data" || tree.Tree.Excludes[0] != "*.tmp" {
		t.Errorf("tree item %+v", tree)
	}
	dump := rec.streams["dump"]
	if dump.n != size || !dump.closed || dump.err != nil || dump.item.Meta["format"] != "raw" {
		t.Errorf("dump: %d bytes, closed %v, err %v, meta %v", dump.n, dump.closed, dump.err, dump.item.Meta)
	}
	if !bytes.Equal(dump.h.Sum(nil), demoHash(size)) {
		t.Error("dump content differs")
	}
	if rec.result == nil || rec.result.Meta["gtid"] != "0-1-42" || rec.result.Warnings[0] != "table x skipped" {
		t.Errorf("result %+v", rec.result)
	}
}

func TestCaptureFailures(t *testing.T) {
	c, st := start(t)
	ctx := ctxT(t)
	src, _ := c.Source(ctx, "demo")

	t.Run("a failed stream item fails the capture and is closed with the error", func(t *testing.T) {
		rec := &recorder{}
		err := src.Capture(ctx, sdk.Instance{Address: "source.demo.x", Config: demoConfig("/x", 1000, true, cty.NilVal)}, rec)
		if err == nil || !strings.Contains(err.Error(), "disk on fire") ||
			!strings.Contains(err.Error(), `plugin "demo": capture source.demo.x`) {
			t.Fatalf("got %v", err)
		}
		if d := rec.streams["dump"]; d == nil || d.err == nil {
			t.Fatalf("stream not closed with an error: %+v", d)
		}
		if rec.result != nil {
			t.Error("Done reached the writer")
		}
	})

	t.Run("a host writer error stops the capture", func(t *testing.T) {
		rec := &recorder{failAt: 1 << 20}
		err := src.Capture(ctx, sdk.Instance{Config: demoConfig("/x", 4<<20, false, cty.NilVal)}, rec)
		if err == nil || !strings.Contains(err.Error(), "host disk full") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a panic becomes an error and the plugin keeps serving", func(t *testing.T) {
		p, _ := c.Source(ctx, "panicky")
		err := p.Capture(ctx, sdk.Instance{Address: "source.panicky.p", Config: cty.EmptyObjectVal}, &recorder{})
		if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "capture exploded") {
			t.Fatalf("got %v", err)
		}
		_, err = p.PlanCapture(ctx, sdk.Instance{Config: cty.EmptyObjectVal})
		if err == nil || !strings.Contains(err.Error(), "index out of range") {
			t.Fatalf("got %v", err)
		}
		if _, err := src.PlanCapture(ctx, sdk.Instance{Config: demoConfig("/x", 1, false, cty.NilVal)}); err != nil {
			t.Fatalf("plugin dead after a panic: %v", err)
		}
	})

	t.Run("a deadline cuts a hanging call", func(t *testing.T) {
		slow, _ := c.Source(ctx, "slow")
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := slow.PlanCapture(dctx, sdk.Instance{Address: "source.slow.s", Config: cty.EmptyObjectVal})
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("cancelling a capture reaches the plugin", func(t *testing.T) {
		slow, _ := c.Source(ctx, "slow")
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		err := slow.Capture(cctx, sdk.Instance{Config: cty.EmptyObjectVal}, &recorder{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		select {
		case <-st.canceled:
		case <-time.After(5 * time.Second):
			t.Fatal("the plugin's capture context was not cancelled")
		}
	})

	t.Run("wrong config type is refused", func(t *testing.T) {
		err := src.Capture(ctx, sdk.Instance{Config: cty.StringVal("x")}, &recorder{})
		if err == nil || !strings.Contains(err.Error(), "does not fit") {
			t.Fatalf("got %v", err)
		}
	})
}

// items is a host-side ItemReader over fixed items.
type items struct {
	list []sdk.Item
	data []string
	i    int
	fail bool // the second item's body fails
}

func (it *items) Next() (sdk.Item, io.Reader, error) {
	if it.i >= len(it.list) {
		return sdk.Item{}, nil, io.EOF
	}
	i := it.i
	it.i++
	if it.fail && i == 1 {
		return it.list[i], io.MultiReader(strings.NewReader("part"), errReader{}), nil
	}
	return it.list[i], strings.NewReader(it.data[i]), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("repository chunk corrupt") }

func TestApply(t *testing.T) {
	c, st := start(t)
	ctx := ctxT(t)
	src, _ := c.Source(ctx, "demo")
	big := strings.Repeat("0123456789", 100_000)
	r := &items{
		list: []sdk.Item{
			{Name: "files", Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: "/restore"}},
			{Name: "dump", Kind: sdk.ItemStream},
		},
		data: []string{"", big},
	}
	var notes []string
	req := sdk.ApplyRequest{Instance: sdk.Instance{Address: "source.demo.db", Config: demoConfig("/srv", 0, false, cty.NilVal)}, Destination: "/tmp/restore",
		Notes: func(n string) { notes = append(notes, n) }}
	if err := src.Apply(ctx, req, r); err != nil {
		t.Fatal(err)
	}
	want := []string{"/tmp/restore:files:tree:", "/tmp/restore:dump:stream:" + big}
	if !reflect.DeepEqual(st.applied, want) {
		t.Fatalf("applied %d items: %.80q", len(st.applied), st.applied)
	}
	// What the plugin reports crosses back to the host.
	if want := []string{"applied files (0 bytes)", "applied dump (1000000 bytes)"}; !reflect.DeepEqual(notes, want) {
		t.Fatalf("notes %q, want %q", notes, want)
	}

	st.applied = nil
	r = &items{list: r.list, data: r.data, fail: true}
	err := src.Apply(ctx, req, r)
	if err == nil || !strings.Contains(err.Error(), "repository chunk corrupt") {
		t.Fatalf("got %v", err)
	}

	p, _ := c.Source(ctx, "panicky")
	err = p.Apply(ctx, sdk.ApplyRequest{Instance: sdk.Instance{Config: cty.EmptyObjectVal}}, &items{})
	if err == nil || !strings.Contains(err.Error(), "cannot apply") {
		t.Fatalf("got %v", err)
	}
}

func TestTargetObjectVerbs(t *testing.T) {
	c, st := start(t)
	ctx := ctxT(t)
	tgt, err := c.Target(ctx, "mem")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tgt.Prepare(ctx, sdk.Instance{Address: "target.mem.m", Config: cty.ObjectVal(map[string]cty.Value{"root": cty.StringVal("/nas")})}, false)
	if err != nil {
		t.Fatal(err)
	}
	if sess.LocalRoot() != "/nas" {
		t.Errorf("local root %q", sess.LocalRoot())
	}

	big := bytes.Repeat([]byte("abcdefghij"), 300_000) // 3 MB: several chunks
	put := func(name string, data []byte) {
		t.Helper()
		if err := sess.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	put("data/ab/big", big)
	put("data/cd/small", []byte("hello"))
	put("keys/k1", []byte("key"))
	put("empty", nil)

	get := func(name string, off, n int64) ([]byte, error) {
		rc, err := sess.Get(ctx, name, off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	for _, tt := range []struct {
		off, n int64
		want   []byte
	}{
		{0, 0, big},
		{5, 3, big[5:8]},
		{1_000_000, 0, big[1_000_000:]},
		{262_140, 300_000, big[262_140:562_140]},
	} {
		got, err := get("data/ab/big", tt.off, tt.n)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("get %d+%d: %d bytes, %v", tt.off, tt.n, len(got), err)
		}
	}
	if got, err := get("empty", 0, 0); err != nil || len(got) != 0 {
		t.Errorf("empty object: %q %v", got, err)
	}

	// Closing a reader early ends the call without reading the rest.
	rc, err := sess.Get(ctx, "data/ab/big", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	rc.Close()

	var listed []string
	err = sess.List(ctx, "data/", func(oi sdk.ObjectInfo) error {
		listed = append(listed, fmt.Sprintf("%s=%d@%d", oi.Name, oi.Size, oi.ModTime.Unix()))
		return nil
	})
	if want := []string{"data/ab/big=3000000@1700000000", "data/cd/small=5@1700000000"}; err != nil || !reflect.DeepEqual(listed, want) {
		t.Errorf("list: %v %v", listed, err)
	}
	stop := errors.New("stop")
	if err := sess.List(ctx, "", func(sdk.ObjectInfo) error { return stop }); err != stop {
		t.Errorf("list callback error: %v", err)
	}

	oi, err := sess.Stat(ctx, "keys/k1")
	if err != nil || oi.Size != 3 {
		t.Errorf("stat: %+v %v", oi, err)
	}
	if err := sess.Delete(ctx, "keys/k1"); err != nil {
		t.Fatal(err)
	}
	_, err = sess.Stat(ctx, "keys/k1")
	if !errors.Is(err, sdk.ErrNotFound) || !strings.Contains(err.Error(), `plugin "demo": stat target.mem.m keys/k1`) {
		t.Errorf("stat of a deleted object: %v", err)
	}
	if err := sess.Delete(ctx, "keys/k1"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
	if _, err := sess.Get(ctx, "nope", 0, 0); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if _, err := sess.Get(ctx, "data/cd/small", 100, 0); err == nil || errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("get beyond the end: %v", err)
	}

	// A body shorter than announced never becomes an object.
	err = sess.Put(ctx, "short", strings.NewReader("abc"), 10)
	if err == nil || !strings.Contains(err.Error(), "header said 10") {
		t.Errorf("short put: %v", err)
	}
	// A failing reader on the host cancels the put.
	err = sess.Put(ctx, "broken", io.MultiReader(strings.NewReader("abc"), errReader{}), -1)
	if err == nil || !strings.Contains(err.Error(), "repository chunk corrupt") {
		t.Errorf("broken put: %v", err)
	}
	for _, name := range []string{"short", "broken"} {
		if _, err := sess.Stat(ctx, name); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s was stored: %v", name, err)
		}
	}

	u, err := sess.Usage(ctx)
	if err != nil || u.TotalBytes != 1<<30 || u.FreeBytes != -1 || u.UsedBytes != int64(len(big))+5 {
		t.Errorf("usage %+v %v", u, err)
	}

	if err := sess.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sess.Release(ctx); err == nil {
		t.Error("second release accepted")
	}
	if _, err := sess.Stat(ctx, "empty"); err == nil || !strings.Contains(err.Error(), "already released") {
		t.Errorf("use after release: %v", err)
	}
	if st.released != 1 {
		t.Errorf("released %d times", st.released)
	}

	// A read-only session refuses writes with the plugin's own words.
	ro, err := tgt.Prepare(ctx, sdk.Instance{Config: cty.ObjectVal(map[string]cty.Value{"root": cty.NullVal(cty.String)})}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Put(ctx, "x", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "read-only session") {
		t.Errorf("read-only put: %v", err)
	}
	if err := ro.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHookAndNotifier(t *testing.T) {
	c, st := start(t)
	ctx := ctxT(t)
	h, err := c.Hook(ctx, "flag")
	if err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{Address: "hook.flag.f", Config: cty.EmptyObjectVal}
	notes, err := h.Up(ctx, sdk.HookRequest{Instance: inst, Env: map[string]string{"RUNNER_JOB": "nightly"}})
	if err != nil || !reflect.DeepEqual(notes, []string{"flag raised"}) {
		t.Fatalf("up: %v %v", notes, err)
	}
	if _, err := h.Down(ctx, sdk.HookRequest{Instance: inst, Env: map[string]string{"RUNNER_STATUS": "success"}}); err != nil {
		t.Fatal(err)
	}
	_, err = h.Down(ctx, sdk.HookRequest{Instance: inst, DryRun: true})
	if err == nil || err.Error() != `plugin "demo": hook down hook.flag.f: down refused in dry run` {
		t.Fatalf("down error: %v", err)
	}
	if want := []string{"up:nightly", "down:success", "down:"}; !reflect.DeepEqual(st.hooks, want) {
		t.Errorf("hooks %v", st.hooks)
	}

	n, err := c.Notifier(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	note := sdk.Notification{Event: "failure", Subject: "job failed", Body: "details", Fields: map[string]string{"job": "nightly"}}
	cfg := cty.ObjectVal(map[string]cty.Value{"token": cty.StringVal("t0k").Mark("sensitive")})
	if err := n.Notify(ctx, sdk.Instance{Address: "notify.log.l", Config: cfg}, note); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.notes, []sdk.Notification{note}) {
		t.Errorf("notes %+v", st.notes)
	}

	if _, err := c.Hook(ctx, "nope"); err == nil || !strings.Contains(err.Error(), `provides no hook type "nope"`) {
		t.Errorf("unknown hook: %v", err)
	}
	// Kinds are separate namespaces.
	if _, err := c.Target(ctx, "demo"); err == nil {
		t.Error("a source type was accepted as a target")
	}
}

func TestConcurrentCalls(t *testing.T) {
	c, _ := start(t)
	ctx := ctxT(t)
	src, _ := c.Source(ctx, "demo")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			size := int64(300_000 + i*1000)
			rec := &recorder{}
			if err := src.Capture(ctx, sdk.Instance{Config: demoConfig("/x", size, false, cty.NilVal)}, rec); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(rec.streams["dump"].h.Sum(nil), demoHash(size)) {
				errs <- fmt.Errorf("capture %d: content differs", i)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestUnreleasedSessionsAreReleasedAtCleanup(t *testing.T) {
	st := &demoState{canceled: make(chan struct{})}
	t.Run("inner", func(t *testing.T) {
		c := sdktest.Start(t, newDemo(st))
		tgt, _ := c.Target(ctxT(t), "mem")
		if _, err := tgt.Prepare(ctxT(t), sdk.Instance{Config: cty.ObjectVal(map[string]cty.Value{"root": cty.NullVal(cty.String)})}, false); err != nil {
			t.Fatal(err)
		}
	})
	if st.released != 1 {
		t.Fatalf("released %d", st.released)
	}
}

func TestInvalidPluginFailsStart(t *testing.T) {
	p := &sdk.Plugin{Name: "bad", Sources: map[string]sdk.Source{"Bad-Name": panickySource{}}}
	if err := rpc.CheckPlugin(p); err == nil || !strings.Contains(err.Error(), "lower-case") {
		t.Fatalf("got %v", err)
	}
	p = &sdk.Plugin{Name: "bad", Functions: map[string]sdk.Function{"f": {Spec: schema.Function{ReturnType: cty.String}}}}
	if err := rpc.CheckPlugin(p); err == nil || !strings.Contains(err.Error(), "no implementation") {
		t.Fatalf("got %v", err)
	}
	p = &sdk.Plugin{Name: "bad", Sources: map[string]sdk.Source{"x": badSchemaSource{}}}
	if err := rpc.CheckPlugin(p); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("got %v", err)
	}
}

type badSchemaSource struct{ panickySource }

func (badSchemaSource) Schema() *schema.Block {
	return &schema.Block{Attributes: []*schema.Attribute{{Name: "for_each", Type: cty.String}}}
}
