// Package host finds, launches and routes to runner plugins.
//
// A Catalog knows three sources of plugins:
//
//   - built-ins: *sdk.Plugin values compiled into the runner. Their types
//     and functions are read from the Go values, but they always run out of
//     process, as the runner executable started with the hidden arguments
//     "internal-plugin NAME", so that a crashing plugin never takes the
//     runner down;
//   - pinned plugins from the configuration's plugin "NAME" { path, sha256 }
//     blocks: the file's sha256 is checked before every launch, and a
//     pinned plugin replaces a built-in of the same name;
//   - plugin directories ($RUNNER_PLUGIN_PATH, ~/.runner/plugins,
//     /usr/local/lib/runner/plugins) holding executables named
//     runner-plugin-NAME, consulted only for what built-ins and pinned
//     plugins do not provide. The first directory holding a name wins.
//
// What an external plugin provides is only known once it runs, so the
// catalog keeps one long-lived "schema" process per plugin for schemas,
// validation and HCL functions, and starts a fresh process for every job
// (Launch), so that a plugin crashing fails that job only.
package host

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Options configure a Catalog.
type Options struct {
	// SelfExe is the runner executable (os.Executable()). Built-ins are
	// launched as SelfExe internal-plugin NAME.
	SelfExe string
	// Builtins are the plugins compiled into the runner.
	Builtins []*sdk.Plugin
	// Dirs are the plugin directories, searched in order; nil means
	// DefaultDirs(). An empty non-nil slice disables directory plugins.
	Dirs []string
	// Logger receives the plugins' log lines, with attribute plugin=NAME.
	Logger *slog.Logger
	// StartTimeout bounds a plugin's start (default 20 s).
	StartTimeout time.Duration
	// FunctionTimeout bounds one call of a plugin's HCL function
	// (default 30 s).
	FunctionTimeout time.Duration
}

// InternalPluginArg is the hidden subcommand that makes the runner
// executable serve one of its built-in plugins:
// SelfExe internal-plugin NAME.
const InternalPluginArg = "internal-plugin"

// ExePrefix is the file name prefix of plugin executables in the plugin
// directories: runner-plugin-NAME.
const ExePrefix = "runner-plugin-"

// DefaultDirs returns the plugin directories, in search order: the
// entries of $RUNNER_PLUGIN_PATH (colon-separated), ~/.runner/plugins,
// /usr/local/lib/runner/plugins.
func DefaultDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("RUNNER_PLUGIN_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".runner", "plugins"))
	}
	return append(dirs, "/usr/local/lib/runner/plugins")
}

type origin int

const (
	originBuiltin origin = iota + 1
	originPinned
	originDir
)

// entry is one plugin the catalog knows.
type entry struct {
	name      string
	origin    origin
	path      string   // executable
	args      []string // arguments (built-ins: internal-plugin NAME)
	builtin   *sdk.Plugin
	sha256    []byte // pinned plugins
	declRange string // pinned plugins: where the plugin block is
	// shadowed names what hides this entry ("" if nothing): a pinned
	// plugin hides a built-in of the same name, built-ins and pinned
	// plugins hide directory plugins, an earlier directory a later one.
	shadowed string

	mu        sync.Mutex // serializes loading and the schema process
	loaded    bool
	schema    *rpc.Schema
	loadErr   error
	schemaPrc *proc
}

// Catalog finds, launches and routes to plugins. It implements
// hcl.PluginResolver. It is safe for concurrent use.
type Catalog struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context // ends at Close: bounds function calls
	cancel context.CancelFunc

	mu       sync.Mutex
	entries  map[string]*entry // built-ins, pinned, and (once scanned) directory plugins
	order    []*entry          // every entry in the order found, shadowed ones too
	scanned  bool              // the directories were scanned
	procs    map[*proc]struct{}
	closed   bool
	closeOne sync.Once

	wg sync.WaitGroup // goroutines starting processes
}

// NewCatalog returns a Catalog. It starts nothing. A built-in plugin that
// is unusable (no name, a name used twice) does not stop the others: it is
// listed by List with its error.
func NewCatalog(opts Options) *Catalog {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 20 * time.Second
	}
	if opts.FunctionTimeout <= 0 {
		opts.FunctionTimeout = 30 * time.Second
	}
	if opts.Dirs == nil {
		opts.Dirs = DefaultDirs()
	}
	opts.Dirs = append([]string(nil), opts.Dirs...)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Catalog{
		opts:    opts,
		log:     opts.Logger,
		ctx:     ctx,
		cancel:  cancel,
		entries: map[string]*entry{},
		procs:   map[*proc]struct{}{},
	}
	for _, p := range opts.Builtins {
		e := &entry{name: pluginName(p), origin: originBuiltin, path: opts.SelfExe,
			args: []string{InternalPluginArg, pluginName(p)}, builtin: p}
		switch {
		case p == nil || !nameRe.MatchString(p.Name):
			e.loaded, e.loadErr = true, e.fail(errors.New("built-in plugin with an invalid name"))
		case c.entries[p.Name] != nil:
			e.shadowed = "built-in plugin of the same name registered earlier"
		default:
			c.entries[p.Name] = e
		}
		c.order = append(c.order, e)
	}
	return c
}

func pluginName(p *sdk.Plugin) string {
	if p == nil {
		return "<nil>"
	}
	return p.Name
}

// nameRe is what a plugin name may look like.
var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// AddPinned adds the plugin of a configuration block
// plugin "NAME" { path = PATH, sha256 = SUM }. path must be absolute
// (resolve it against the configuration file's directory first); declRange
// (e.g. "runner.hcl:12,1-16") is quoted in errors about it. A pinned
// plugin replaces a built-in plugin of the same name. Add pinned plugins
// before the first lookup: routing decisions are not revisited.
func (c *Catalog) AddPinned(name, path, sha256Hex, declRange string) error {
	fail := func(format string, args ...any) error {
		return &PluginError{Plugin: name, DeclRange: declRange, Err: fmt.Errorf(format, args...)}
	}
	if !nameRe.MatchString(name) {
		return fail("invalid plugin name: use lower-case letters, digits, '-' and '_'")
	}
	if !filepath.IsAbs(path) {
		return fail("plugin path %q is not absolute", path)
	}
	sum, err := hex.DecodeString(strings.TrimSpace(sha256Hex))
	if err != nil || len(sum) != 32 {
		return fail("sha256 %q is not 64 hexadecimal digits", sha256Hex)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail("catalog is closed")
	}
	e := &entry{name: name, origin: originPinned, path: filepath.Clean(path), sha256: sum, declRange: declRange}
	if old, ok := c.entries[name]; ok {
		switch old.origin {
		case originPinned:
			return fail("plugin is declared twice (also at %s)", old.declRange)
		case originBuiltin:
			old.shadowed = "plugin block at " + declRange
		case originDir:
			old.shadowed = "plugin block at " + declRange
		}
	}
	c.entries[name] = e
	c.order = append(c.order, e)
	return nil
}

// PluginError is an error about one plugin of the catalog:
// `plugin "postgres": checksum mismatch for ...`.
type PluginError struct {
	Plugin    string
	DeclRange string // the plugin block, for pinned plugins
	Err       error
}

func (e *PluginError) Error() string {
	msg := fmt.Sprintf("plugin %q: %v", e.Plugin, e.Err)
	if e.DeclRange != "" {
		msg += fmt.Sprintf(" (plugin block at %s)", e.DeclRange)
	}
	return msg
}

func (e *PluginError) Unwrap() error { return e.Err }

func (e *entry) fail(err error) error {
	if err == nil {
		return nil
	}
	var pe *PluginError
	var re *rpc.Error
	if errors.As(err, &pe) || (errors.As(err, &re) && re.Plugin == e.name) {
		return err // names the plugin already
	}
	return &PluginError{Plugin: e.name, DeclRange: e.declRange, Err: err}
}

// where says where a plugin comes from, for listings and errors.
func (e *entry) where() string {
	if e.origin == originBuiltin {
		return "built-in"
	}
	return e.path
}

// ---------------------------------------------------------------- processes

// track registers a process about to be started, so that Close stops it,
// and counts its starter goroutine in c.wg. Both happen under c.mu with the
// closed check, so no starter is added once Close waits for them.
func (c *Catalog) track(p *proc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("plugin catalog is closed")
	}
	c.procs[p] = struct{}{}
	c.wg.Add(1)
	return nil
}

func (c *Catalog) untrack(p *proc) {
	c.mu.Lock()
	delete(c.procs, p)
	c.mu.Unlock()
}

// Instance is a plugin process launched for one job. Close it when the job
// is done.
type Instance struct {
	*rpc.Client
	c *Catalog
	p *proc
}

// Pid is the plugin process's id.
func (i *Instance) Pid() int { return i.p.pid() }

// Close stops the plugin process. It is safe to call more than once.
func (i *Instance) Close() error {
	i.p.stop()
	i.c.untrack(i.p)
	return nil
}

// The verbs below route each call to the plugin type the instance names
// (inst.TypeName), so one Instance serves every block type of its plugin.
// They are the sdk verbs except Schema, which only makes sense for one type:
// Source, Target, Hook and Notifier (from rpc.Client) give typed values
// that implement the sdk interfaces fully.

// PlanCapture calls the source type inst.TypeName.
func (i *Instance) PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	s, err := i.Source(ctx, inst.TypeName)
	if err != nil {
		return nil, err
	}
	return s.PlanCapture(ctx, inst)
}

// Capture calls the source type inst.TypeName.
func (i *Instance) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	s, err := i.Source(ctx, inst.TypeName)
	if err != nil {
		return err
	}
	return s.Capture(ctx, inst, w)
}

// Apply calls the source type req.Instance.TypeName.
func (i *Instance) Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	s, err := i.Source(ctx, req.Instance.TypeName)
	if err != nil {
		return err
	}
	return s.Apply(ctx, req, r)
}

// Prepare calls the target type inst.TypeName.
func (i *Instance) Prepare(ctx context.Context, inst sdk.Instance, readOnly bool) (sdk.Session, error) {
	t, err := i.Target(ctx, inst.TypeName)
	if err != nil {
		return nil, err
	}
	return t.Prepare(ctx, inst, readOnly)
}

// Up calls the hook type req.Instance.TypeName.
func (i *Instance) Up(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	h, err := i.Hook(ctx, req.Instance.TypeName)
	if err != nil {
		return nil, err
	}
	return h.Up(ctx, req)
}

// Down calls the hook type req.Instance.TypeName.
func (i *Instance) Down(ctx context.Context, req sdk.HookRequest) ([]string, error) {
	h, err := i.Hook(ctx, req.Instance.TypeName)
	if err != nil {
		return nil, err
	}
	return h.Down(ctx, req)
}

// Notify calls the notifier type inst.TypeName.
func (i *Instance) Notify(ctx context.Context, inst sdk.Instance, n sdk.Notification) error {
	nt, err := i.Notifier(ctx, inst.TypeName)
	if err != nil {
		return err
	}
	return nt.Notify(ctx, inst, n)
}

// Launch starts a fresh process of the plugin called name, for one job: if
// it crashes, only the calls on this Instance fail.
func (c *Catalog) Launch(ctx context.Context, name string) (*Instance, error) {
	e, err := c.entry(ctx, name)
	if err != nil {
		return nil, err
	}
	p, err := c.start(ctx, e)
	if err != nil {
		return nil, e.fail(err)
	}
	return &Instance{Client: p.client, c: c, p: p}, nil
}

// AddDirs adds plugin directories, searched before the ones given in
// Options (a configuration's plugin_dirs take precedence over the
// environment and the defaults). Add them before the first lookup: once
// the directories have been scanned, the new ones are scanned at once but
// come last, and routing decisions already made are not revisited.
func (c *Catalog) AddDirs(dirs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scanned {
		c.scanDirsLocked(dirs)
	}
	c.opts.Dirs = append(append([]string(nil), dirs...), c.opts.Dirs...)
}

// entry returns the plugin called name, scanning the directories if it is
// neither built-in nor pinned.
func (c *Catalog) entry(ctx context.Context, name string) (*entry, error) {
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	if err := c.scan(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok = c.entries[name]
	dirs := strings.Join(c.opts.Dirs, ", ")
	c.mu.Unlock()
	if !ok {
		return nil, &PluginError{Plugin: name, Err: fmt.Errorf("not found: not built in, not in a plugin block, and no %s%s in %s",
			ExePrefix, name, dirs)}
	}
	return e, ctx.Err()
}

// schemaClient returns the long-lived process of e used for schemas,
// validation and functions, starting it (again, if it died) as needed.
// e.mu must be held.
func (c *Catalog) schemaClient(ctx context.Context, e *entry) (*rpc.Client, error) {
	if p := e.schemaPrc; p != nil {
		if !p.client.Exited() {
			return p.client, nil
		}
		c.untrack(p)
		p.stop()
		e.schemaPrc = nil
	}
	p, err := c.start(ctx, e)
	if err != nil {
		return nil, err
	}
	e.schemaPrc = p
	return p.client, nil
}

// load makes e's schema known: from the Go value for a built-in, from its
// schema process otherwise. A failure is remembered for the run, unless it
// was the caller's context ending.
func (c *Catalog) load(ctx context.Context, e *entry) (*rpc.Schema, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loaded {
		return e.schema, e.loadErr
	}
	var s *rpc.Schema
	var err error
	if e.origin == originBuiltin {
		s, err = builtinSchema(e.builtin)
	} else {
		var cl *rpc.Client
		cl, err = c.schemaClient(ctx, e)
		if err == nil {
			s, err = cl.GetSchema(ctx)
		}
	}
	err = e.fail(err)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	e.loaded, e.schema, e.loadErr = true, s, err
	return s, err
}

// builtinSchema reads what a built-in plugin provides from its Go value.
func builtinSchema(p *sdk.Plugin) (*rpc.Schema, error) {
	if err := rpc.CheckPlugin(p); err != nil {
		return nil, fmt.Errorf("invalid built-in plugin: %w", err)
	}
	s := &rpc.Schema{PluginName: p.Name, PluginVersion: p.Version}
	add := func(kind schema.Kind, name string, impl sdk.Schemer) {
		s.BlockTypes = append(s.BlockTypes, schema.BlockType{Kind: kind, TypeName: name, Block: impl.Schema()})
	}
	for _, n := range sortedKeys(p.Sources) {
		add(schema.KindSource, n, p.Sources[n])
	}
	for _, n := range sortedKeys(p.Targets) {
		add(schema.KindTarget, n, p.Targets[n])
	}
	for _, n := range sortedKeys(p.Hooks) {
		add(schema.KindHook, n, p.Hooks[n])
	}
	for _, n := range sortedKeys(p.Notifiers) {
		add(schema.KindNotify, n, p.Notifiers[n])
	}
	for _, n := range sortedKeys(p.Functions) {
		spec := p.Functions[n].Spec
		spec.Name = n
		s.Functions = append(s.Functions, spec)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckPinned launches every pinned plugin (checksum first) to read its
// schema, and returns what failed. Call it from validation so that a bad
// plugin block is reported even if nothing uses the plugin.
func (c *Catalog) CheckPinned(ctx context.Context) error {
	var errs []error
	for _, r := range c.loadAll(ctx, c.pick(func(e *entry) bool { return e.origin == originPinned })) {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every plugin process the catalog started, waiting for them
// to end. Calls in flight fail. It is safe to call more than once and from
// several goroutines; every call returns once everything is stopped.
func (c *Catalog) Close() error {
	c.closeOne.Do(func() {
		c.mu.Lock()
		c.closed = true
		procs := make([]*proc, 0, len(c.procs))
		for p := range c.procs {
			procs = append(procs, p)
		}
		c.procs = map[*proc]struct{}{}
		c.mu.Unlock()
		c.cancel()

		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.stop()
			}()
		}
		wg.Wait()
		// Processes still starting are stopped by their starter, which
		// finds the catalog closed or its caller gone.
		c.wg.Wait()
	})
	return nil
}
