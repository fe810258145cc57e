package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

// ClientOptions configure a host-side Client.
type ClientOptions struct {
	// Name is the plugin's name as the host knows it (from the config or
	// the executable), used in every error.
	Name string
	// ExitReason, if set, says why the plugin process ended, e.g.
	// "exit status 2: panic: boom" or "stopped by runner". It is called only
	// after the process has exited.
	ExitReason func() string
}

// Client is the host side of the protocol for one plugin process. It is safe
// for concurrent use. It does not own the process: whoever launched it
// stops it.
type Client struct {
	name   string
	opts   ClientOptions
	exited <-chan struct{}

	provider proto.ProviderClient
	source   proto.SourceClient
	target   proto.TargetClient
	hook     proto.HookClient
	notifier proto.NotifierClient

	mu     sync.Mutex
	schema *Schema // cached: a plugin process's schema does not change
}

// NewClient returns a Client over conn. exited, if not nil, is closed when
// the plugin process has exited: errors on a dropped connection then say
// that the plugin crashed instead of quoting the transport.
func NewClient(conn grpc.ClientConnInterface, exited <-chan struct{}, opts ClientOptions) *Client {
	name := opts.Name
	if name == "" {
		name = "(unnamed)"
	}
	return &Client{
		name:     name,
		opts:     opts,
		exited:   exited,
		provider: proto.NewProviderClient(conn),
		source:   proto.NewSourceClient(conn),
		target:   proto.NewTargetClient(conn),
		hook:     proto.NewHookClient(conn),
		notifier: proto.NewNotifierClient(conn),
	}
}

// Name returns the plugin's name as given in ClientOptions.
func (c *Client) Name() string { return c.name }

// Exited reports whether the plugin process is known to have exited.
func (c *Client) Exited() bool { return c.waitExited(0) }

// Schema is what a plugin provides.
type Schema struct {
	PluginName    string // the name the plugin gives itself
	PluginVersion string
	BlockTypes    []schema.BlockType
	Functions     []schema.Function
}

// BlockType returns the schema of kind/typeName, or nil.
func (s *Schema) BlockType(kind schema.Kind, typeName string) *schema.Block {
	for _, bt := range s.BlockTypes {
		if bt.Kind == kind && bt.TypeName == typeName {
			return bt.Block
		}
	}
	return nil
}

// Function returns the function called name.
func (s *Schema) Function(name string) (schema.Function, bool) {
	for _, f := range s.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return schema.Function{}, false
}

// GetSchema asks the plugin what it provides. The answer is checked (every
// block schema must validate, names must be unique) and cached.
func (c *Client) GetSchema(ctx context.Context) (*Schema, error) {
	c.mu.Lock()
	cached := c.schema
	c.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	resp, err := c.provider.GetSchema(ctx, &proto.GetSchemaRequest{})
	if err != nil {
		return nil, c.fail(ctx, "get schema", err)
	}
	s, err := schemaFromProto(resp)
	if err != nil {
		return nil, &Error{Plugin: c.name, Op: "get schema", Err: fmt.Errorf("invalid schema: %w", err)}
	}
	c.mu.Lock()
	if c.schema == nil {
		c.schema = s
	}
	s = c.schema
	c.mu.Unlock()
	return s, nil
}

func schemaFromProto(resp *proto.GetSchemaResponse) (*Schema, error) {
	s := &Schema{PluginName: resp.GetPluginName(), PluginVersion: resp.GetPluginVersion()}
	seen := map[string]bool{}
	for _, pbt := range resp.GetSchema().GetBlockTypes() {
		bt, err := wire.BlockTypeFromProto(pbt)
		if err != nil {
			return nil, err
		}
		key := bt.Kind.String() + "." + bt.TypeName
		if !identRe.MatchString(bt.TypeName) {
			return nil, fmt.Errorf("%s: type names must be lower-case identifiers", key)
		}
		if seen[key] {
			return nil, fmt.Errorf("%s is declared twice", key)
		}
		seen[key] = true
		if err := bt.Block.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		s.BlockTypes = append(s.BlockTypes, bt)
	}
	for _, pf := range resp.GetSchema().GetFunctions() {
		f, err := wire.FunctionFromProto(pf)
		if err != nil {
			return nil, err
		}
		if !identRe.MatchString(f.Name) {
			return nil, fmt.Errorf("function %q: names must be lower-case identifiers", f.Name)
		}
		if seen["function."+f.Name] {
			return nil, fmt.Errorf("function %q is declared twice", f.Name)
		}
		seen["function."+f.Name] = true
		s.Functions = append(s.Functions, f)
	}
	return s, nil
}

// ValidateConfig asks the plugin to check a decoded configuration of
// kind/typeName. Problems with the configuration come back as diagnostics;
// the error is for failed calls.
func (c *Client) ValidateConfig(ctx context.Context, kind schema.Kind, typeName string, config cty.Value) (schema.Diagnostics, error) {
	op := fmt.Sprintf("validate %s %q", kind, typeName)
	pv, err := wire.ValueToProto(config)
	if err != nil {
		return nil, &Error{Plugin: c.name, Op: op, Err: err}
	}
	resp, err := c.provider.ValidateConfig(ctx, &proto.ValidateConfigRequest{
		Kind: wire.KindToProto(kind), TypeName: typeName, Config: pv,
	})
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	return wire.DiagnosticsFromProto(resp.GetDiagnostics()), nil
}

// CallFunction calls the plugin function name. An error about one argument
// is (or wraps) an *sdk.ArgError with its 0-based index.
func (c *Client) CallFunction(ctx context.Context, name string, args []cty.Value) (cty.Value, error) {
	op := fmt.Sprintf("function %s", name)
	req := &proto.CallFunctionRequest{Name: name}
	for i, a := range args {
		pv, err := wire.ValueToProto(a)
		if err != nil {
			return cty.NilVal, &Error{Plugin: c.name, Op: op, Err: &pluginapi.ArgError{Index: i, Err: err}}
		}
		req.Args = append(req.Args, pv)
	}
	resp, err := c.provider.CallFunction(ctx, req)
	if err != nil {
		return cty.NilVal, c.fail(ctx, op, err)
	}
	if msg := resp.GetError(); msg != "" {
		var ferr error = errors.New(msg)
		if i := int(resp.GetErrorArg()) - 1; i >= 0 && i < len(args) {
			ferr = &pluginapi.ArgError{Index: i, Err: ferr}
		}
		return cty.NilVal, &Error{Plugin: c.name, Op: op, Err: ferr}
	}
	v, err := wire.ValueFromProto(resp.GetResult())
	if err == nil && v == cty.NilVal {
		err = errors.New("no result")
	}
	if err != nil {
		return cty.NilVal, &Error{Plugin: c.name, Op: op, Err: err}
	}
	return v, nil
}

// block returns the schema of kind/typeName, which the plugin must provide.
func (c *Client) block(ctx context.Context, kind schema.Kind, typeName string) (*schema.Block, error) {
	s, err := c.GetSchema(ctx)
	if err != nil {
		return nil, err
	}
	b := s.BlockType(kind, typeName)
	if b == nil {
		return nil, &Error{Plugin: c.name, Err: fmt.Errorf("provides no %s type %q", kind, typeName)}
	}
	return b, nil
}

// instance encodes inst for a call on typeName.
func (c *Client) instance(typeName string, inst pluginapi.Instance) (*proto.Instance, error) {
	if inst.TypeName == "" {
		inst.TypeName = typeName
	}
	if inst.TypeName != typeName {
		return nil, fmt.Errorf("instance %s is of type %q, not %q", inst.Address, inst.TypeName, typeName)
	}
	return wire.InstanceToProto(inst)
}

// ---------------------------------------------------------------- hooks

// HookClient is a plugin hook type seen from the host.
type HookClient struct {
	c        *Client
	typeName string
	block    *schema.Block
}

var _ pluginapi.Hook = (*HookClient)(nil)

// Hook returns the hook type typeName of the plugin.
func (c *Client) Hook(ctx context.Context, typeName string) (*HookClient, error) {
	b, err := c.block(ctx, schema.KindHook, typeName)
	if err != nil {
		return nil, err
	}
	return &HookClient{c: c, typeName: typeName, block: b}, nil
}

// Schema returns the hook type's block schema.
func (h *HookClient) Schema() *schema.Block { return h.block }

// Up runs the hook's up step.
func (h *HookClient) Up(ctx context.Context, req pluginapi.HookRequest) ([]string, error) {
	return h.run(ctx, "up", req, h.c.hook.Up)
}

// Down runs the hook's down step.
func (h *HookClient) Down(ctx context.Context, req pluginapi.HookRequest) ([]string, error) {
	return h.run(ctx, "down", req, h.c.hook.Down)
}

func (h *HookClient) run(ctx context.Context, verb string, req pluginapi.HookRequest,
	call func(context.Context, *proto.HookRequest, ...grpc.CallOption) (*proto.HookResponse, error)) ([]string, error) {
	op := fmt.Sprintf("hook %s %s", verb, req.Instance.Address)
	pi, err := h.c.instance(h.typeName, req.Instance)
	if err != nil {
		return nil, &Error{Plugin: h.c.name, Op: op, Err: err}
	}
	resp, err := call(ctx, &proto.HookRequest{Instance: pi, Env: req.Env, DryRun: req.DryRun})
	if err != nil {
		return nil, h.c.fail(ctx, op, err)
	}
	return resp.GetNotes(), nil
}

// ---------------------------------------------------------------- notifiers

// NotifierClient is a plugin notifier type seen from the host.
type NotifierClient struct {
	c        *Client
	typeName string
	block    *schema.Block
}

var _ pluginapi.Notifier = (*NotifierClient)(nil)

// Notifier returns the notifier type typeName of the plugin.
func (c *Client) Notifier(ctx context.Context, typeName string) (*NotifierClient, error) {
	b, err := c.block(ctx, schema.KindNotify, typeName)
	if err != nil {
		return nil, err
	}
	return &NotifierClient{c: c, typeName: typeName, block: b}, nil
}

// Schema returns the notifier type's block schema.
func (n *NotifierClient) Schema() *schema.Block { return n.block }

// Notify sends one notification.
func (n *NotifierClient) Notify(ctx context.Context, inst pluginapi.Instance, note pluginapi.Notification) error {
	op := fmt.Sprintf("notify %s", inst.Address)
	pi, err := n.c.instance(n.typeName, inst)
	if err != nil {
		return &Error{Plugin: n.c.name, Op: op, Err: err}
	}
	_, err = n.c.notifier.Notify(ctx, &proto.NotifyRequest{
		Instance: pi, Event: note.Event, Subject: note.Subject, Body: note.Body, Fields: note.Fields,
	})
	return n.c.fail(ctx, op, err)
}
