package sdktest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// The demo plugin below exercises every verb of the protocol. It keeps what
// it was asked to do in a demoState the tests inspect.

type demoState struct {
	mu       sync.Mutex
	applied  []string // "name:kind:content" of applied items
	hooks    []string // "up:<RUNNER_JOB>" ...
	notes    []sdk.Notification
	released int
	canceled chan struct{} // closed when a capture saw its context end
}

func newDemo(st *demoState) *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "demo",
		Version: "1.2.3",
		Sources: map[string]sdk.Source{
			"demo":    &demoSource{st: st},
			"panicky": panickySource{},
			"slow":    &slowSource{st: st},
		},
		Targets:   map[string]sdk.Target{"mem": &memTarget{st: st}},
		Hooks:     map[string]sdk.Hook{"flag": &flagHook{st: st}},
		Notifiers: map[string]sdk.Notifier{"log": &logNotifier{st: st}},
		Functions: map[string]sdk.Function{
			"repeat": {
				Spec: schema.Function{
					Name:        "repeat",
					Description: "repeats s n times",
					Params: []schema.Parameter{
						{Name: "s", Type: cty.String},
						{Name: "n", Type: cty.Number},
					},
					ReturnType: cty.String,
				},
				Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
					n, _ := args[1].AsBigFloat().Int64()
					if n < 0 {
						return cty.NilVal, &sdk.ArgError{Index: 1, Err: errors.New("must not be negative")}
					}
					return cty.StringVal(strings.Repeat(args[0].AsString(), int(n))), nil
				},
			},
			"boom": {
				Spec: schema.Function{Name: "boom", ReturnType: cty.String},
				Impl: func(context.Context, []cty.Value) (cty.Value, error) { panic("function exploded") },
			},
		},
	}
}

// ---------------------------------------------------------------- sources

type demoSource struct{ st *demoState }

func (s *demoSource) Schema() *schema.Block {
	return &schema.Block{
		Attributes: []*schema.Attribute{
			{Name: "path", Type: cty.String, Required: true},
			{Name: "size", Type: cty.Number},
			{Name: "fail_stream", Type: cty.Bool},
		},
		Blocks: []*schema.NestedBlock{{
			TypeName: "expect", Nesting: schema.NestingSingle,
			Block: &schema.Block{Attributes: []*schema.Attribute{{Name: "uid", Type: cty.Number}}},
		}},
	}
}

func (s *demoSource) Validate(_ context.Context, cfg cty.Value) schema.Diagnostics {
	var diags schema.Diagnostics
	if p := cfg.GetAttr("path"); !p.IsNull() && !strings.HasPrefix(p.AsString(), "/") {
		diags = append(diags, schema.Errorf([]string{"path"}, "path must be absolute"))
	}
	if e := cfg.GetAttr("expect"); !e.IsNull() {
		if uid := e.GetAttr("uid"); !uid.IsNull() && uid.RawEquals(cty.NumberIntVal(0)) {
			diags = append(diags, schema.Errorf([]string{"expect", "uid"}, "uid 0 is root"))
		}
	}
	return diags
}

func (s *demoSource) PlanCapture(_ context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	size := configSize(inst.Config)
	return &sdk.CapturePlan{
		Items: []sdk.ItemEstimate{
			{Name: "files", Kind: sdk.ItemTree, Files: 3, Detail: inst.Config.GetAttr("path").AsString()},
			{Name: "dump", Kind: sdk.ItemStream, Bytes: size},
		},
		Notes: []string{"would dump " + inst.Address},
	}, nil
}

func configSize(cfg cty.Value) int64 {
	v := cfg.GetAttr("size")
	if v.IsNull() {
		return 0
	}
	n, _ := v.AsBigFloat().Int64()
	return n
}

// demoByte is the content of the demo dump at offset i.
func demoByte(i int64) byte { return byte(i*7 + i/251) }

func (s *demoSource) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	root := inst.Config.GetAttr("path").AsString()
	if err := w.Tree(sdk.Item{Name: "files", Tree: &sdk.TreeSpec{Root: root, Excludes: []string{"*.tmp"}}}); err != nil {
		return err
	}
	sw, err := w.Stream(sdk.Item{Name: "dump", Meta: map[string]string{"format": "raw"}})
	if err != nil {
		return err
	}
	size := configSize(inst.Config)
	// Odd-sized writes, so chunking is exercised across write boundaries.
	buf := make([]byte, 100_003)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		for i := int64(0); i < n; i++ {
			buf[i] = demoByte(off + i)
		}
		if _, err := sw.Write(buf[:n]); err != nil {
			return err
		}
		off += n
	}
	if fs := inst.Config.GetAttr("fail_stream"); !fs.IsNull() && fs.True() {
		_ = sw.CloseWithError(errors.New("disk on fire"))
		return errors.New("dump failed")
	}
	if err := sw.Close(); err != nil {
		return err
	}
	return w.Done(sdk.CaptureResult{Meta: map[string]string{"gtid": "0-1-42"}, Warnings: []string{"table x skipped"}})
}

func (s *demoSource) Apply(_ context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	for {
		item, body, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		s.st.mu.Lock()
		s.st.applied = append(s.st.applied, fmt.Sprintf("%s:%s:%s:%s", req.Destination, item.Name, item.Kind, data))
		s.st.mu.Unlock()
		req.Note("applied %s (%d bytes)", item.Name, len(data))
	}
}

type panickySource struct{}

func (panickySource) Schema() *schema.Block { return &schema.Block{} }
func (panickySource) PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error) {
	var items []sdk.ItemEstimate
	_ = items[len(items)] // an index out of range: a real runtime panic
	return nil, nil
}
func (panickySource) Capture(context.Context, sdk.Instance, sdk.CaptureWriter) error {
	panic("capture exploded")
}

// slowSource blocks until its context ends.
type slowSource struct{ st *demoState }

func (s *slowSource) Schema() *schema.Block { return &schema.Block{} }
func (s *slowSource) PlanCapture(ctx context.Context, _ sdk.Instance) (*sdk.CapturePlan, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (s *slowSource) Capture(ctx context.Context, _ sdk.Instance, w sdk.CaptureWriter) error {
	sw, err := w.Stream(sdk.Item{Name: "endless"})
	if err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("x"), 1000)
	for {
		if _, err := sw.Write(chunk); err != nil {
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	<-ctx.Done()
	close(s.st.canceled)
	return ctx.Err()
}

// ---------------------------------------------------------------- target

type memTarget struct{ st *demoState }

func (t *memTarget) Schema() *schema.Block {
	return &schema.Block{Attributes: []*schema.Attribute{{Name: "root", Type: cty.String}}}
}

func (t *memTarget) Prepare(_ context.Context, inst sdk.Instance, readOnly bool) (sdk.Session, error) {
	root := ""
	if v := inst.Config.GetAttr("root"); !v.IsNull() {
		root = v.AsString()
	}
	return &memSession{st: t.st, root: root, readOnly: readOnly, objs: map[string][]byte{}}, nil
}

type memSession struct {
	st       *demoState
	root     string
	readOnly bool
	mu       sync.Mutex
	objs     map[string][]byte
}

func (s *memSession) LocalRoot() string { return s.root }

func (s *memSession) Put(_ context.Context, name string, r io.Reader, size int64) error {
	if s.readOnly {
		return errors.New("read-only session")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err // never store a partial object
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("size mismatch")
	}
	s.mu.Lock()
	s.objs[name] = data
	s.mu.Unlock()
	return nil
}

func (s *memSession) Get(_ context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	s.mu.Lock()
	data, ok := s.objs[name]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, sdk.ErrNotFound)
	}
	if offset > int64(len(data)) {
		return nil, fmt.Errorf("offset %d beyond the end", offset)
	}
	data = data[offset:]
	if length > 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (s *memSession) List(_ context.Context, prefix string, fn func(sdk.ObjectInfo) error) error {
	s.mu.Lock()
	var names []string
	for n := range s.objs {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sizes := map[string]int{}
	for _, n := range names {
		sizes[n] = len(s.objs[n])
	}
	s.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		if err := fn(sdk.ObjectInfo{Name: n, Size: int64(sizes[n]), ModTime: time.Unix(1700000000, 0)}); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSession) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[name]; !ok {
		return sdk.ErrNotFound
	}
	delete(s.objs, name)
	return nil
}

func (s *memSession) Stat(_ context.Context, name string) (sdk.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objs[name]
	if !ok {
		return sdk.ObjectInfo{}, fmt.Errorf("stat %s: %w", name, sdk.ErrNotFound)
	}
	return sdk.ObjectInfo{Name: name, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}, nil
}

func (s *memSession) Usage(context.Context) (sdk.Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var used int64
	for _, d := range s.objs {
		used += int64(len(d))
	}
	return sdk.Usage{TotalBytes: 1 << 30, FreeBytes: -1, UsedBytes: used}, nil
}

func (s *memSession) Release(context.Context) error {
	s.st.mu.Lock()
	s.st.released++
	s.st.mu.Unlock()
	return nil
}

// ---------------------------------------------------------------- hook, notifier

type flagHook struct{ st *demoState }

func (h *flagHook) Schema() *schema.Block { return &schema.Block{} }
func (h *flagHook) Up(_ context.Context, req sdk.HookRequest) ([]string, error) {
	h.st.mu.Lock()
	h.st.hooks = append(h.st.hooks, "up:"+req.Env["RUNNER_JOB"])
	h.st.mu.Unlock()
	return []string{"flag raised"}, nil
}
func (h *flagHook) Down(_ context.Context, req sdk.HookRequest) ([]string, error) {
	h.st.mu.Lock()
	h.st.hooks = append(h.st.hooks, "down:"+req.Env["RUNNER_STATUS"])
	h.st.mu.Unlock()
	if req.DryRun {
		return nil, errors.New("down refused in dry run")
	}
	return nil, nil
}

type logNotifier struct{ st *demoState }

func (n *logNotifier) Schema() *schema.Block {
	return &schema.Block{Attributes: []*schema.Attribute{{Name: "token", Type: cty.String, Sensitive: true}}}
}
func (n *logNotifier) Notify(_ context.Context, _ sdk.Instance, note sdk.Notification) error {
	n.st.mu.Lock()
	n.st.notes = append(n.st.notes, note)
	n.st.mu.Unlock()
	return nil
}
