// Package wire converts between the protobuf messages of the plugin
// protocol (plugins/proto) and the Go types plugin code and the host use
// (schema, sdk). Both sides of the protocol go through these functions, so
// what one side encodes the other decodes the same way.
//
// cty types cross as JSON (cty/json.MarshalType), values as msgpack
// (cty/msgpack) together with their type, so a receiver can decode a value
// without knowing the schema in advance and then check it against the
// schema it expects.
package wire

import (
	"fmt"
	"math"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeToProto encodes a cty type as JSON.
func TypeToProto(ty cty.Type) ([]byte, error) {
	if ty == cty.NilType {
		return nil, fmt.Errorf("no type")
	}
	b, err := ctyjson.MarshalType(ty)
	if err != nil {
		return nil, fmt.Errorf("encode type %s: %w", ty.FriendlyName(), err)
	}
	return b, nil
}

// TypeFromProto decodes a JSON-encoded cty type.
func TypeFromProto(b []byte) (cty.Type, error) {
	if len(b) == 0 {
		return cty.NilType, fmt.Errorf("no type")
	}
	ty, err := ctyjson.UnmarshalType(b)
	if err != nil {
		return cty.NilType, fmt.Errorf("decode type: %w", err)
	}
	return ty, nil
}

// KindToProto maps a schema kind to its protobuf enum.
func KindToProto(k schema.Kind) proto.Kind {
	switch k {
	case schema.KindSource:
		return proto.Kind_KIND_SOURCE
	case schema.KindTarget:
		return proto.Kind_KIND_TARGET
	case schema.KindHook:
		return proto.Kind_KIND_HOOK
	case schema.KindNotify:
		return proto.Kind_KIND_NOTIFY
	}
	return proto.Kind_KIND_UNSPECIFIED
}

// KindFromProto maps a protobuf kind to schema.Kind.
func KindFromProto(k proto.Kind) (schema.Kind, error) {
	switch k {
	case proto.Kind_KIND_SOURCE:
		return schema.KindSource, nil
	case proto.Kind_KIND_TARGET:
		return schema.KindTarget, nil
	case proto.Kind_KIND_HOOK:
		return schema.KindHook, nil
	case proto.Kind_KIND_NOTIFY:
		return schema.KindNotify, nil
	}
	return 0, fmt.Errorf("unknown block kind %v", k)
}

// BlockToProto encodes a block schema.
func BlockToProto(b *schema.Block) (*proto.Block, error) {
	if b == nil {
		return nil, fmt.Errorf("no block schema")
	}
	out := &proto.Block{Description: b.Description}
	for _, a := range b.Attributes {
		if a == nil {
			return nil, fmt.Errorf("nil attribute")
		}
		ty, err := TypeToProto(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		out.Attributes = append(out.Attributes, &proto.Attribute{
			Name:        a.Name,
			Type:        ty,
			Description: a.Description,
			Required:    a.Required,
			Sensitive:   a.Sensitive,
		})
	}
	for _, nb := range b.Blocks {
		if nb == nil {
			return nil, fmt.Errorf("nil nested block")
		}
		inner, err := BlockToProto(nb.Block)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", nb.TypeName, err)
		}
		nesting, err := nestingToProto(nb.Nesting)
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", nb.TypeName, err)
		}
		minItems, err := toInt32(nb.MinItems)
		if err != nil {
			return nil, fmt.Errorf("block %q: min_items: %w", nb.TypeName, err)
		}
		maxItems, err := toInt32(nb.MaxItems)
		if err != nil {
			return nil, fmt.Errorf("block %q: max_items: %w", nb.TypeName, err)
		}
		out.Blocks = append(out.Blocks, &proto.NestedBlock{
			TypeName: nb.TypeName,
			Block:    inner,
			Nesting:  nesting,
			MinItems: minItems,
			MaxItems: maxItems,
		})
	}
	return out, nil
}

// BlockFromProto decodes a block schema. It checks what the encoding can
// get wrong (types, nesting modes, counts); the names are checked by
// schema.Block.Validate, which the host runs on what it receives.
func BlockFromProto(pb *proto.Block) (*schema.Block, error) {
	if pb == nil {
		return nil, fmt.Errorf("no block schema")
	}
	out := &schema.Block{Description: pb.GetDescription()}
	for _, a := range pb.GetAttributes() {
		ty, err := TypeFromProto(a.GetType())
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.GetName(), err)
		}
		out.Attributes = append(out.Attributes, &schema.Attribute{
			Name:        a.GetName(),
			Type:        ty,
			Description: a.GetDescription(),
			Required:    a.GetRequired(),
			Sensitive:   a.GetSensitive(),
		})
	}
	for _, nb := range pb.GetBlocks() {
		inner, err := BlockFromProto(nb.GetBlock())
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", nb.GetTypeName(), err)
		}
		nesting, err := nestingFromProto(nb.GetNesting())
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", nb.GetTypeName(), err)
		}
		if nb.GetMinItems() < 0 || nb.GetMaxItems() < 0 {
			return nil, fmt.Errorf("block %q: negative item count", nb.GetTypeName())
		}
		out.Blocks = append(out.Blocks, &schema.NestedBlock{
			TypeName: nb.GetTypeName(),
			Block:    inner,
			Nesting:  nesting,
			MinItems: int(nb.GetMinItems()),
			MaxItems: int(nb.GetMaxItems()),
		})
	}
	return out, nil
}

func nestingToProto(n schema.Nesting) (proto.NestedBlock_Nesting, error) {
	switch n {
	case schema.NestingSingle:
		return proto.NestedBlock_NESTING_SINGLE, nil
	case schema.NestingList:
		return proto.NestedBlock_NESTING_LIST, nil
	case schema.NestingMap:
		return proto.NestedBlock_NESTING_MAP, nil
	}
	return 0, fmt.Errorf("unknown nesting mode %d", int(n))
}

func nestingFromProto(n proto.NestedBlock_Nesting) (schema.Nesting, error) {
	switch n {
	case proto.NestedBlock_NESTING_SINGLE:
		return schema.NestingSingle, nil
	case proto.NestedBlock_NESTING_LIST:
		return schema.NestingList, nil
	case proto.NestedBlock_NESTING_MAP:
		return schema.NestingMap, nil
	}
	return 0, fmt.Errorf("unknown nesting mode %v", n)
}

func toInt32(n int) (int32, error) {
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%d out of range", n)
	}
	return int32(n), nil
}

// BlockTypeToProto encodes a top-level block type.
func BlockTypeToProto(bt schema.BlockType) (*proto.BlockType, error) {
	kind := KindToProto(bt.Kind)
	if kind == proto.Kind_KIND_UNSPECIFIED {
		return nil, fmt.Errorf("%s %q: unknown kind", bt.Kind, bt.TypeName)
	}
	b, err := BlockToProto(bt.Block)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", bt.Kind, bt.TypeName, err)
	}
	return &proto.BlockType{Kind: kind, TypeName: bt.TypeName, Block: b}, nil
}

// BlockTypeFromProto decodes a top-level block type.
func BlockTypeFromProto(pbt *proto.BlockType) (schema.BlockType, error) {
	kind, err := KindFromProto(pbt.GetKind())
	if err != nil {
		return schema.BlockType{}, fmt.Errorf("block type %q: %w", pbt.GetTypeName(), err)
	}
	b, err := BlockFromProto(pbt.GetBlock())
	if err != nil {
		return schema.BlockType{}, fmt.Errorf("%s %q: %w", kind, pbt.GetTypeName(), err)
	}
	return schema.BlockType{Kind: kind, TypeName: pbt.GetTypeName(), Block: b}, nil
}

// FunctionToProto encodes a function signature.
func FunctionToProto(f schema.Function) (*proto.Function, error) {
	out := &proto.Function{Name: f.Name, Description: f.Description}
	for _, p := range f.Params {
		pp, err := paramToProto(p)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", f.Name, err)
		}
		out.Params = append(out.Params, pp)
	}
	if f.Variadic != nil {
		pp, err := paramToProto(*f.Variadic)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", f.Name, err)
		}
		out.Variadic = pp
	}
	rt, err := TypeToProto(f.ReturnType)
	if err != nil {
		return nil, fmt.Errorf("function %q: return type: %w", f.Name, err)
	}
	out.ReturnType = rt
	return out, nil
}

// FunctionFromProto decodes a function signature.
func FunctionFromProto(pf *proto.Function) (schema.Function, error) {
	out := schema.Function{Name: pf.GetName(), Description: pf.GetDescription()}
	for _, pp := range pf.GetParams() {
		p, err := paramFromProto(pp)
		if err != nil {
			return schema.Function{}, fmt.Errorf("function %q: %w", pf.GetName(), err)
		}
		out.Params = append(out.Params, p)
	}
	if pf.GetVariadic() != nil {
		p, err := paramFromProto(pf.GetVariadic())
		if err != nil {
			return schema.Function{}, fmt.Errorf("function %q: %w", pf.GetName(), err)
		}
		out.Variadic = &p
	}
	rt, err := TypeFromProto(pf.GetReturnType())
	if err != nil {
		return schema.Function{}, fmt.Errorf("function %q: return type: %w", pf.GetName(), err)
	}
	out.ReturnType = rt
	return out, nil
}

func paramToProto(p schema.Parameter) (*proto.Parameter, error) {
	ty, err := TypeToProto(p.Type)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", p.Name, err)
	}
	return &proto.Parameter{Name: p.Name, Type: ty, AllowNull: p.AllowNull}, nil
}

func paramFromProto(pp *proto.Parameter) (schema.Parameter, error) {
	ty, err := TypeFromProto(pp.GetType())
	if err != nil {
		return schema.Parameter{}, fmt.Errorf("parameter %q: %w", pp.GetName(), err)
	}
	return schema.Parameter{Name: pp.GetName(), Type: ty, AllowNull: pp.GetAllowNull()}, nil
}

// DiagnosticsToProto encodes diagnostics.
func DiagnosticsToProto(ds schema.Diagnostics) []*proto.Diagnostic {
	if len(ds) == 0 {
		return nil
	}
	out := make([]*proto.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := proto.Diagnostic_SEVERITY_ERROR
		if d.Severity == schema.Warning {
			sev = proto.Diagnostic_SEVERITY_WARNING
		}
		out = append(out, &proto.Diagnostic{
			Severity:      sev,
			Summary:       d.Summary,
			Detail:        d.Detail,
			AttributePath: append([]string(nil), d.Path...),
		})
	}
	return out
}

// DiagnosticsFromProto decodes diagnostics. An unknown severity counts as an
// error: a plugin that means to complain must not be ignored by accident.
func DiagnosticsFromProto(pds []*proto.Diagnostic) schema.Diagnostics {
	if len(pds) == 0 {
		return nil
	}
	out := make(schema.Diagnostics, 0, len(pds))
	for _, pd := range pds {
		sev := schema.Error
		if pd.GetSeverity() == proto.Diagnostic_SEVERITY_WARNING {
			sev = schema.Warning
		}
		out = append(out, schema.Diagnostic{
			Severity: sev,
			Summary:  pd.GetSummary(),
			Detail:   pd.GetDetail(),
			Path:     append([]string(nil), pd.GetAttributePath()...),
		})
	}
	return out
}
