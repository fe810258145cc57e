package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

var _ hcl.PluginResolver = (*Catalog)(nil)

// scan looks for runner-plugin-NAME executables in the plugin directories,
// once per catalog. Directories that do not exist are skipped.
func (c *Catalog) scan() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("plugin catalog is closed")
	}
	if !c.scanned {
		c.scanned = true
		c.scanDirsLocked(c.opts.Dirs)
	}
	return nil
}

// scanDirsLocked adds the plugins found in dirs; a name already known
// (built-in, pinned, or found before) shadows the new one. c.mu is held, so
// that no lookup sees a half-scanned catalog.
func (c *Catalog) scanDirsLocked(dirs []string) {
	for _, dir := range dirs {
		des, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("cannot read plugin directory", "dir", dir, "error", err)
			}
			continue
		}
		for _, de := range des {
			name, ok := strings.CutPrefix(de.Name(), ExePrefix)
			if !ok || !nameRe.MatchString(name) {
				continue
			}
			path := filepath.Join(dir, de.Name())
			e := &entry{name: name, origin: originDir, path: path}
			// Symbolic links are followed: a plugin may be installed as a
			// link to a versioned file.
			if fi, err := os.Stat(path); err != nil {
				e.loaded, e.loadErr = true, e.fail(err)
			} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				e.loaded, e.loadErr = true, e.fail(fmt.Errorf("%s is not an executable file", path))
			}
			if old, ok := c.entries[name]; ok {
				e.shadowed = old.where()
				if old.origin == originBuiltin && old.shadowed == "" {
					e.shadowed = "built-in plugin"
				}
			} else {
				c.entries[name] = e
			}
			c.order = append(c.order, e)
		}
	}
}

// pick returns the entries (not shadowed) for which keep is true.
func (c *Catalog) pick(keep func(*entry) bool) []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*entry
	for _, e := range c.order {
		if e.shadowed == "" && keep(e) {
			out = append(out, e)
		}
	}
	return out
}

type loadResult struct {
	e   *entry
	s   *rpc.Schema
	err error
}

// loadParallel bounds how many plugin processes start at once.
const loadParallel = 4

// loadAll loads the schemas of es, several at a time, in es's order.
func (c *Catalog) loadAll(ctx context.Context, es []*entry) []loadResult {
	out := make([]loadResult, len(es))
	sem := make(chan struct{}, loadParallel)
	var wg sync.WaitGroup
	for i, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = loadResult{e: e, err: e.fail(ctx.Err())}
				return
			}
			defer func() { <-sem }()
			s, err := c.load(ctx, e)
			out[i] = loadResult{e: e, s: s, err: err}
		}()
	}
	wg.Wait()
	return out
}

// lookup is something to find a provider for.
type lookup struct {
	what string                   // e.g. `source type "files"`, for messages
	has  func(s *rpc.Schema) bool // whether a schema provides it
}

// resolve finds the one plugin providing l: built-ins and pinned plugins
// first, then, only if none of them does, the directory plugins. Several
// providers at the same stage are an error, not a guess.
func (c *Catalog) resolve(ctx context.Context, l lookup) (*entry, *rpc.Schema, error) {
	stages := []func() ([]*entry, error){
		func() ([]*entry, error) {
			return c.pick(func(e *entry) bool { return e.origin != originDir }), nil
		},
		func() ([]*entry, error) {
			if err := c.scan(); err != nil {
				return nil, err
			}
			return c.pick(func(e *entry) bool { return e.origin == originDir }), nil
		},
	}
	var failed []error
	for i, stage := range stages {
		es, err := stage()
		if err != nil {
			return nil, nil, err
		}
		// Every plugin of the stage is looked at (built-ins from their Go
		// values, others through their schema process, started once per
		// run), so that a type two plugins provide is an error, not a
		// matter of order.
		var found []loadResult
		for _, r := range c.loadAll(ctx, es) {
			switch {
			case r.err != nil:
				failed = append(failed, r.err)
			case l.has(r.s):
				found = append(found, r)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		switch len(found) {
		case 0:
			if i == 0 && len(failed) > 0 {
				// A broken built-in or plugin block may well be the
				// provider: say so rather than guess from directories.
				return nil, nil, fmt.Errorf("cannot tell which plugin provides %s: %w", l.what, errList(failed))
			}
			continue
		case 1:
			return found[0].e, found[0].s, nil
		}
		var names []string
		for _, r := range found {
			names = append(names, fmt.Sprintf("%q (%s)", r.e.name, r.e.where()))
		}
		return nil, nil, fmt.Errorf("%s is provided by more than one plugin: %s", l.what, strings.Join(names, ", "))
	}
	if len(failed) > 0 {
		// Only directory plugins failed here (see above). A broken file in
		// a plugin directory must not turn every unknown type into a
		// plugin error; it is mentioned, in case it was the one.
		return nil, nil, fmt.Errorf("%s: %w (some plugins could not be loaded: %w)", l.what, hcl.ErrNotProvided, errList(failed))
	}
	return nil, nil, fmt.Errorf("%s: %w", l.what, hcl.ErrNotProvided)
}

func blockLookup(kind schema.Kind, typeName string) lookup {
	return lookup{
		what: fmt.Sprintf("%s type %q", kind, typeName),
		has:  func(s *rpc.Schema) bool { return s.BlockType(kind, typeName) != nil },
	}
}

func functionLookup(name string) lookup {
	return lookup{
		what: fmt.Sprintf("function %q", name),
		has: func(s *rpc.Schema) bool {
			_, ok := s.Function(name)
			return ok
		},
	}
}

// Provider returns the name of the plugin providing kind/typeName (for
// Launch). The error wraps hcl.ErrNotProvided if no plugin provides it.
func (c *Catalog) Provider(ctx context.Context, kind schema.Kind, typeName string) (string, error) {
	e, _, err := c.resolve(ctx, blockLookup(kind, typeName))
	if err != nil {
		return "", err
	}
	return e.name, nil
}

// BlockSchema returns the schema of kind/typeName (hcl.PluginResolver).
func (c *Catalog) BlockSchema(ctx context.Context, kind schema.Kind, typeName string) (*schema.Block, error) {
	_, s, err := c.resolve(ctx, blockLookup(kind, typeName))
	if err != nil {
		return nil, err
	}
	return s.BlockType(kind, typeName), nil
}

// BlockTypes lists the type names of kind that any plugin provides, for
// suggestions (hcl.PluginResolver). Plugins that cannot be loaded are left
// out.
func (c *Catalog) BlockTypes(ctx context.Context, kind schema.Kind) []string {
	if err := c.scan(); err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range c.loadAll(ctx, c.pick(func(*entry) bool { return true })) {
		if r.err != nil {
			continue
		}
		for _, bt := range r.s.BlockTypes {
			if bt.Kind == kind {
				seen[bt.TypeName] = true
			}
		}
	}
	return sortedKeys(seen)
}

// ValidateBlock asks the plugin providing kind/typeName to check config
// (hcl.PluginResolver). It runs in the plugin's schema process; for a
// built-in plugin, in this process: Validate is a pure check of the
// configuration that contacts nothing, and starting a process for it made
// every runner invocation (a cron poll with nothing due included) tens of
// milliseconds slower per plugin.
func (c *Catalog) ValidateBlock(ctx context.Context, kind schema.Kind, typeName string, config cty.Value) (schema.Diagnostics, error) {
	e, _, err := c.resolve(ctx, blockLookup(kind, typeName))
	if err != nil {
		return nil, err
	}
	if e.origin == originBuiltin {
		return validateBuiltin(ctx, e.builtin, kind, typeName, config)
	}
	e.mu.Lock()
	cl, err := c.schemaClient(ctx, e)
	e.mu.Unlock()
	if err != nil {
		return nil, e.fail(err)
	}
	return cl.ValidateConfig(ctx, kind, typeName, config)
}

// Function returns the plugin function called name as a cty function
// (hcl.PluginResolver). Each call runs in the plugin's schema process and
// is cut after Options.FunctionTimeout; an error about one argument becomes
// a function.ArgError, so the diagnostic points at that argument.
func (c *Catalog) Function(ctx context.Context, name string) (function.Function, error) {
	e, s, err := c.resolve(ctx, functionLookup(name))
	if err != nil {
		return function.Function{}, err
	}
	f, _ := s.Function(name)
	spec := &function.Spec{
		Description: f.Description,
		Type:        function.StaticReturnType(f.ReturnType),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return c.callFunction(e, name, args)
		},
	}
	for _, p := range f.Params {
		spec.Params = append(spec.Params, function.Parameter{Name: p.Name, Type: p.Type, AllowNull: p.AllowNull})
	}
	if f.Variadic != nil {
		spec.VarParam = &function.Parameter{Name: f.Variadic.Name, Type: f.Variadic.Type, AllowNull: f.Variadic.AllowNull}
	}
	return function.New(spec), nil
}

func (c *Catalog) callFunction(e *entry, name string, args []cty.Value) (cty.Value, error) {
	// cty functions get no context: bound the call by the catalog's life
	// and the function timeout.
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.FunctionTimeout)
	defer cancel()
	e.mu.Lock()
	cl, err := c.schemaClient(ctx, e)
	e.mu.Unlock()
	if err != nil {
		return cty.NilVal, e.fail(err)
	}
	v, err := cl.CallFunction(ctx, name, args)
	var ae *sdk.ArgError
	if errors.As(err, &ae) {
		return cty.NilVal, function.NewArgError(ae.Index, err)
	}
	return v, err
}

// PluginInfo describes one plugin for `runner plugins`.
type PluginInfo struct {
	Name       string
	Origin     string   // "built-in", "config" or "directory"
	Where      string   // the executable, or "built-in"
	DeclRange  string   // config: the plugin block
	Version    string   // as the plugin reports it
	BlockTypes []string // kind.type, e.g. source.files
	Functions  []string
	// Shadowed names what hides this plugin: it is not used.
	Shadowed string
	// Err is why the plugin could not be launched or read.
	Err error
}

// List describes every plugin found, including those that are shadowed or
// broken, launching each usable external plugin to read its schema.
func (c *Catalog) List(ctx context.Context) ([]PluginInfo, error) {
	if err := c.scan(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	all := append([]*entry(nil), c.order...)
	shadowed := make(map[*entry]string, len(all))
	for _, e := range all {
		shadowed[e] = e.shadowed
	}
	c.mu.Unlock()
	var active []*entry
	for _, e := range all {
		if shadowed[e] == "" {
			active = append(active, e)
		}
	}
	loaded := map[*entry]loadResult{}
	for _, r := range c.loadAll(ctx, active) {
		loaded[r.e] = r
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]PluginInfo, 0, len(all))
	for _, e := range all {
		info := PluginInfo{Name: e.name, Where: e.where(), DeclRange: e.declRange, Shadowed: shadowed[e]}
		switch e.origin {
		case originBuiltin:
			info.Origin = "built-in"
		case originPinned:
			info.Origin = "config"
		default:
			info.Origin = "directory"
		}
		if r, ok := loaded[e]; ok {
			info.Err = r.err
			if r.s != nil {
				info.Version = r.s.PluginVersion
				for _, bt := range r.s.BlockTypes {
					info.BlockTypes = append(info.BlockTypes, bt.Kind.String()+"."+bt.TypeName)
				}
				for _, f := range r.s.Functions {
					info.Functions = append(info.Functions, f.Name)
				}
			}
		} else if e.origin == originBuiltin {
			// A replaced built-in is still described from its Go value.
			if s, err := builtinSchema(e.builtin); err == nil {
				info.Version = s.PluginVersion
				for _, bt := range s.BlockTypes {
					info.BlockTypes = append(info.BlockTypes, bt.Kind.String()+"."+bt.TypeName)
				}
				for _, f := range s.Functions {
					info.Functions = append(info.Functions, f.Name)
				}
			}
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// errList is several errors on one line, for messages that quote them.
type errList []error

func (l errList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (l errList) Unwrap() []error { return l }

// validateBuiltin runs a built-in block type's Validate in this process; a
// panic in it becomes an error, as it would through the plugin protocol.
func validateBuiltin(ctx context.Context, p *sdk.Plugin, kind schema.Kind, typeName string, config cty.Value) (diags schema.Diagnostics, err error) {
	var impl any
	switch kind {
	case schema.KindSource:
		impl = p.Sources[typeName]
	case schema.KindTarget:
		impl = p.Targets[typeName]
	case schema.KindHook:
		impl = p.Hooks[typeName]
	case schema.KindNotify:
		impl = p.Notifiers[typeName]
	}
	v, ok := impl.(sdk.Validator)
	if !ok {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = &PluginError{Plugin: p.Name, Err: fmt.Errorf("validate %s %q: panic: %v", kind, typeName, r)}
		}
	}()
	return v.Validate(ctx, config), nil
}
