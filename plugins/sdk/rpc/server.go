package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

// chunkSize is the size of the Data messages this package sends: large
// enough to keep per-message overhead small, far below gRPC's 4 MiB default
// message limit.
const chunkSize = 256 << 10

// Server is the plugin side of the protocol: it serves the gRPC services of
// plugins/proto by dispatching to the Go implementations of one plugin.
// Every call to plugin code is guarded: a panic becomes an error for that
// call (logged with its stack) instead of killing the plugin process.
type Server struct {
	p   *pluginapi.Plugin
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*serverSession // prepared target sessions by id
	closed   bool                      // Shutdown was called
}

type serverSession struct {
	sess    pluginapi.Session
	address string
}

// NewServer returns a Server for p, logging plugin panics to log (nil
// discards). Check p with CheckPlugin first.
func NewServer(p *pluginapi.Plugin, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{p: p, log: log, sessions: map[string]*serverSession{}}
}

// Register registers the runner services on a gRPC server. Only the runner
// services: go-plugin's own services on the same server are left alone.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	proto.RegisterProviderServer(r, &providerServer{s: s})
	proto.RegisterSourceServer(r, &sourceServer{s: s})
	proto.RegisterTargetServer(r, &targetServer{s: s})
	proto.RegisterHookServer(r, &hookServer{s: s})
	proto.RegisterNotifierServer(r, &notifierServer{s: s})
}

// Shutdown releases every target session the host prepared but did not
// release, as a last resort when the host went away or closed the
// connection: an unreleased session may hold a mount or a lock. Later
// Prepare calls fail.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	left := s.sessions
	s.sessions = map[string]*serverSession{}
	s.mu.Unlock()

	var errs []error
	for id, ss := range left {
		s.log.Warn("releasing a target session the host left open", "address", ss.address, "session", id)
		err := s.call("Release", ss.address, func() error { return ss.sess.Release(ctx) })
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", ss.address, err))
		}
	}
	return errors.Join(errs...)
}

// call runs plugin code, turning a panic into an error.
func (s *Server) call(verb, address string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("plugin panicked", "call", verb, "address", address,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", verb, r)
		}
	}()
	return fn()
}

// toStatus maps an error from plugin code to a gRPC status error, keeping
// the meanings the host relies on: not found, and the end of the call's
// context. A context error of the plugin's own (say, its database client
// timed out) is an ordinary error, not the host's deadline.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, pluginapi.ErrNotFound):
		code = codes.NotFound
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		code = codes.Canceled
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// lookup returns the implementation of kind/typeName and its block schema.
func (s *Server) lookup(kind schema.Kind, typeName string) (impl pluginapi.Schemer, block *schema.Block, err error) {
	var ok bool
	switch kind {
	case schema.KindSource:
		impl, ok = s.p.Sources[typeName]
	case schema.KindTarget:
		impl, ok = s.p.Targets[typeName]
	case schema.KindHook:
		impl, ok = s.p.Hooks[typeName]
	case schema.KindNotify:
		impl, ok = s.p.Notifiers[typeName]
	}
	if !ok || impl == nil {
		provided := "none"
		if names := s.typeNames(kind); len(names) > 0 {
			provided = strings.Join(names, ", ")
		}
		return nil, nil, status.Errorf(codes.InvalidArgument, "no %s type %q in this plugin (its %s types: %s)",
			kind, typeName, kind, provided)
	}
	err = s.call("Schema", typeName, func() error {
		block = impl.Schema()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if block == nil {
		return nil, nil, status.Errorf(codes.Internal, "%s type %q has no schema", kind, typeName)
	}
	return impl, block, nil
}

func (s *Server) typeNames(kind schema.Kind) []string {
	var names []string
	switch kind {
	case schema.KindSource:
		names = sortedKeys(s.p.Sources)
	case schema.KindTarget:
		names = sortedKeys(s.p.Targets)
	case schema.KindHook:
		names = sortedKeys(s.p.Hooks)
	case schema.KindNotify:
		names = sortedKeys(s.p.Notifiers)
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// instance decodes the instance of a request for kind and returns the
// implementation it addresses.
func (s *Server) instance(kind schema.Kind, pi *proto.Instance) (pluginapi.Schemer, pluginapi.Instance, error) {
	if pi == nil {
		return nil, pluginapi.Instance{}, status.Error(codes.InvalidArgument, "request has no instance")
	}
	impl, block, err := s.lookup(kind, pi.GetTypeName())
	if err != nil {
		return nil, pluginapi.Instance{}, err
	}
	inst, err := wire.InstanceFromProto(pi, block.ImpliedType())
	if err != nil {
		return nil, pluginapi.Instance{}, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	return impl, inst, nil
}

func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func (s *Server) addSession(ss *serverSession) (string, error) {
	id, err := newSessionID()
	if err != nil {
		return "", status.Errorf(codes.Internal, "session id: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", status.Error(codes.Unavailable, "plugin is shutting down")
	}
	s.sessions[id] = ss
	return id, nil
}

func (s *Server) session(id string) (*serverSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "no target session %q (never prepared, or already released)", id)
	}
	return ss, nil
}

func (s *Server) takeSession(id string) (*serverSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "no target session %q (never prepared, or already released)", id)
	}
	delete(s.sessions, id)
	return ss, nil
}

// ---------------------------------------------------------------- provider

type providerServer struct {
	proto.UnimplementedProviderServer
	s *Server
}

func (ps *providerServer) GetSchema(context.Context, *proto.GetSchemaRequest) (*proto.GetSchemaResponse, error) {
	sch, err := ps.s.schema()
	if err != nil {
		return nil, err
	}
	return &proto.GetSchemaResponse{PluginName: ps.s.p.Name, PluginVersion: ps.s.p.Version, Schema: sch}, nil
}

func (s *Server) schema() (*proto.Schema, error) {
	out := &proto.Schema{}
	for _, kind := range schema.Kinds {
		for _, name := range s.typeNames(kind) {
			_, block, err := s.lookup(kind, name)
			if err != nil {
				return nil, err
			}
			bt, err := wire.BlockTypeToProto(schema.BlockType{Kind: kind, TypeName: name, Block: block})
			if err != nil {
				return nil, status.Errorf(codes.Internal, "%v", err)
			}
			out.BlockTypes = append(out.BlockTypes, bt)
		}
	}
	for _, name := range sortedKeys(s.p.Functions) {
		spec := s.p.Functions[name].Spec
		spec.Name = name
		pf, err := wire.FunctionToProto(spec)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		out.Functions = append(out.Functions, pf)
	}
	return out, nil
}

func (ps *providerServer) ValidateConfig(ctx context.Context, req *proto.ValidateConfigRequest) (*proto.ValidateConfigResponse, error) {
	kind, err := wire.KindFromProto(req.GetKind())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	impl, block, err := ps.s.lookup(kind, req.GetTypeName())
	if err != nil {
		return nil, err
	}
	cfg, err := wire.ValueFromProtoAs(req.GetConfig(), block.ImpliedType())
	if err != nil {
		// The host decodes with the schema this plugin published, so this
		// is a host bug or a version skew rather than a user mistake;
		// still, say it as a diagnostic the user can act on.
		return &proto.ValidateConfigResponse{Diagnostics: wire.DiagnosticsToProto(schema.Diagnostics{
			{Severity: schema.Error, Summary: "configuration does not match the plugin's schema", Detail: err.Error()},
		})}, nil
	}
	v, ok := impl.(pluginapi.Validator)
	if !ok {
		return &proto.ValidateConfigResponse{}, nil
	}
	var diags schema.Diagnostics
	err = ps.s.call("Validate", fmt.Sprintf("%s.%s", kind, req.GetTypeName()), func() error {
		diags = v.Validate(ctx, cfg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &proto.ValidateConfigResponse{Diagnostics: wire.DiagnosticsToProto(diags)}, nil
}

func (ps *providerServer) CallFunction(ctx context.Context, req *proto.CallFunctionRequest) (*proto.CallFunctionResponse, error) {
	name := req.GetName()
	f, ok := ps.s.p.Functions[name]
	if !ok || f.Impl == nil {
		return nil, status.Errorf(codes.InvalidArgument, "no function %q in this plugin", name)
	}
	fail := func(argIndex int, format string, args ...any) (*proto.CallFunctionResponse, error) {
		return &proto.CallFunctionResponse{Error: fmt.Sprintf(format, args...), ErrorArg: int32(argIndex + 1)}, nil
	}
	spec := f.Spec
	nargs := len(req.GetArgs())
	if nargs < len(spec.Params) || (spec.Variadic == nil && nargs > len(spec.Params)) {
		want := fmt.Sprint(len(spec.Params))
		if spec.Variadic != nil {
			want = "at least " + want
		}
		return fail(-1, "%s: wrong number of arguments: want %s, got %d", name, want, nargs)
	}
	args := make([]cty.Value, nargs)
	for i, pa := range req.GetArgs() {
		p := spec.Variadic
		if i < len(spec.Params) {
			p = &spec.Params[i]
		}
		v, err := wire.ValueFromProto(pa)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "argument %d: %v", i+1, err)
		}
		if v == cty.NilVal {
			v = cty.NullVal(p.Type)
		}
		if v.IsNull() && !p.AllowNull {
			return fail(i, "argument %q must not be null", p.Name)
		}
		cv, err := convert.Convert(v, p.Type)
		if err != nil {
			return fail(i, "argument %q: %v", p.Name, err)
		}
		args[i] = cv
	}
	var result cty.Value
	err := ps.s.call("function "+name, "", func() error {
		var err error
		result, err = f.Impl(ctx, args)
		return err
	})
	if err != nil {
		if _, ok := status.FromError(err); ok && status.Code(err) == codes.Internal {
			return fail(-1, "%v", err) // a panic in the function
		}
		var ae *pluginapi.ArgError
		if errors.As(err, &ae) && ae.Index >= 0 && ae.Index < nargs {
			return fail(ae.Index, "%v", ae.Err)
		}
		return fail(-1, "%v", err)
	}
	if result == cty.NilVal {
		return fail(-1, "%s returned no value", name)
	}
	if spec.ReturnType != cty.NilType && spec.ReturnType != cty.DynamicPseudoType {
		cv, err := convert.Convert(result, spec.ReturnType)
		if err != nil {
			return fail(-1, "%s returned a value that does not fit its return type: %v", name, err)
		}
		result = cv
	}
	pv, err := wire.ValueToProto(result)
	if err != nil {
		return fail(-1, "%s: %v", name, err)
	}
	return &proto.CallFunctionResponse{Result: pv}, nil
}

// ---------------------------------------------------------------- hooks and notifiers

type hookServer struct {
	proto.UnimplementedHookServer
	s *Server
}

func (hs *hookServer) Up(ctx context.Context, req *proto.HookRequest) (*proto.HookResponse, error) {
	return hs.run(ctx, req, "Up", pluginapi.Hook.Up)
}

func (hs *hookServer) Down(ctx context.Context, req *proto.HookRequest) (*proto.HookResponse, error) {
	return hs.run(ctx, req, "Down", pluginapi.Hook.Down)
}

func (hs *hookServer) run(ctx context.Context, req *proto.HookRequest, verb string,
	fn func(pluginapi.Hook, context.Context, pluginapi.HookRequest) ([]string, error)) (*proto.HookResponse, error) {
	impl, inst, err := hs.s.instance(schema.KindHook, req.GetInstance())
	if err != nil {
		return nil, err
	}
	hreq := pluginapi.HookRequest{Instance: inst, Env: req.GetEnv(), DryRun: req.GetDryRun()}
	var notes []string
	err = hs.s.call(verb, inst.Address, func() error {
		var err error
		notes, err = fn(impl.(pluginapi.Hook), ctx, hreq)
		return err
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &proto.HookResponse{Notes: slices.Clone(notes)}, nil
}

type notifierServer struct {
	proto.UnimplementedNotifierServer
	s *Server
}

func (ns *notifierServer) Notify(ctx context.Context, req *proto.NotifyRequest) (*proto.NotifyResponse, error) {
	impl, inst, err := ns.s.instance(schema.KindNotify, req.GetInstance())
	if err != nil {
		return nil, err
	}
	n := pluginapi.Notification{Event: req.GetEvent(), Subject: req.GetSubject(), Body: req.GetBody(), Fields: req.GetFields()}
	err = ns.s.call("Notify", inst.Address, func() error {
		return impl.(pluginapi.Notifier).Notify(ctx, inst, n)
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &proto.NotifyResponse{}, nil
}

// ---------------------------------------------------------------- checks

var identRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// CheckPlugin reports what is wrong with a plugin definition before it is
// served: names, missing implementations, and schemas that do not validate
// or cannot be sent to the host.
func CheckPlugin(p *pluginapi.Plugin) error {
	if p == nil {
		return errors.New("no plugin")
	}
	if p.Name == "" {
		return errors.New("plugin has no name")
	}
	var errs []error
	checkTypes := func(kind schema.Kind, names []string, get func(string) pluginapi.Schemer) {
		for _, name := range names {
			if !identRe.MatchString(name) {
				errs = append(errs, fmt.Errorf("%s type %q: type names must be lower-case identifiers", kind, name))
				continue
			}
			impl := get(name)
			if impl == nil {
				errs = append(errs, fmt.Errorf("%s type %q has no implementation", kind, name))
				continue
			}
			block, err := schemaOf(impl)
			if err == nil {
				err = block.Validate()
			}
			if err == nil {
				_, err = wire.BlockToProto(block)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s type %q: schema: %w", kind, name, err))
			}
		}
	}
	checkTypes(schema.KindSource, sortedKeys(p.Sources), func(n string) pluginapi.Schemer { return nilIfNil(p.Sources[n]) })
	checkTypes(schema.KindTarget, sortedKeys(p.Targets), func(n string) pluginapi.Schemer { return nilIfNil(p.Targets[n]) })
	checkTypes(schema.KindHook, sortedKeys(p.Hooks), func(n string) pluginapi.Schemer { return nilIfNil(p.Hooks[n]) })
	checkTypes(schema.KindNotify, sortedKeys(p.Notifiers), func(n string) pluginapi.Schemer { return nilIfNil(p.Notifiers[n]) })
	for _, name := range sortedKeys(p.Functions) {
		f := p.Functions[name]
		switch {
		case !identRe.MatchString(name):
			errs = append(errs, fmt.Errorf("function %q: names must be lower-case identifiers", name))
		case f.Impl == nil:
			errs = append(errs, fmt.Errorf("function %q has no implementation", name))
		case f.Spec.Name != "" && f.Spec.Name != name:
			errs = append(errs, fmt.Errorf("function %q: its spec is named %q", name, f.Spec.Name))
		default:
			spec := f.Spec
			spec.Name = name
			if _, err := wire.FunctionToProto(spec); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// nilIfNil turns a typed nil interface value into a plain nil.
func nilIfNil[T any](v T) pluginapi.Schemer {
	s, ok := any(v).(pluginapi.Schemer)
	if !ok || s == nil {
		return nil
	}
	return s
}

func schemaOf(impl pluginapi.Schemer) (block *schema.Block, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Schema panicked: %v", r)
		}
	}()
	block = impl.Schema()
	if block == nil {
		return nil, errors.New("Schema returned nil")
	}
	return block, nil
}
