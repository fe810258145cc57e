package wire

import (
	"fmt"
	"maps"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/msgpack"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
)

// ValueToProto encodes a value with its own type. Marks (such as the host's
// "sensitive") cannot cross the process boundary and are dropped: the schema
// says which attributes are sensitive, and the host marks them again on its
// side. cty.NilVal, the absence of a value, encodes as nil.
func ValueToProto(v cty.Value) (*proto.Value, error) {
	if v == cty.NilVal {
		return nil, nil
	}
	v, _ = v.UnmarkDeep()
	ty := v.Type()
	tb, err := TypeToProto(ty)
	if err != nil {
		return nil, err
	}
	b, err := msgpack.Marshal(v, ty)
	if err != nil {
		return nil, fmt.Errorf("encode %s value: %w", ty.FriendlyName(), err)
	}
	return &proto.Value{Msgpack: b, Type: tb}, nil
}

// ValueFromProto decodes a value using the type it carries. A nil message
// decodes as cty.NilVal.
func ValueFromProto(pv *proto.Value) (cty.Value, error) {
	if pv == nil {
		return cty.NilVal, nil
	}
	ty, err := TypeFromProto(pv.GetType())
	if err != nil {
		return cty.NilVal, err
	}
	v, err := msgpack.Unmarshal(pv.GetMsgpack(), ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("decode %s value: %w", ty.FriendlyName(), err)
	}
	return v, nil
}

// ValueFromProtoAs decodes a value and converts it to want, so the receiver
// gets exactly the type its schema promises (e.g. an object with every
// attribute of the block). A nil message decodes as a null of type want.
func ValueFromProtoAs(pv *proto.Value, want cty.Type) (cty.Value, error) {
	v, err := ValueFromProto(pv)
	if err != nil {
		return cty.NilVal, err
	}
	if v == cty.NilVal {
		return cty.NullVal(want), nil
	}
	if v.Type().Equals(want) {
		return v, nil
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		return cty.NilVal, fmt.Errorf("value of type %s does not fit %s: %w",
			v.Type().FriendlyName(), want.FriendlyName(), err)
	}
	return cv, nil
}

// InstanceToProto encodes a block instance.
func InstanceToProto(inst pluginapi.Instance) (*proto.Instance, error) {
	cfg, err := ValueToProto(inst.Config)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", inst.Address, err)
	}
	return &proto.Instance{TypeName: inst.TypeName, Address: inst.Address, Config: cfg}, nil
}

// InstanceFromProto decodes a block instance, converting its configuration
// to configType (the type the block schema implies).
func InstanceFromProto(pi *proto.Instance, configType cty.Type) (pluginapi.Instance, error) {
	if pi == nil {
		return pluginapi.Instance{}, fmt.Errorf("no instance in request")
	}
	cfg, err := ValueFromProtoAs(pi.GetConfig(), configType)
	if err != nil {
		return pluginapi.Instance{}, fmt.Errorf("config of %s: %w", pi.GetAddress(), err)
	}
	return pluginapi.Instance{TypeName: pi.GetTypeName(), Address: pi.GetAddress(), Config: cfg}, nil
}

// ItemKindToProto maps an item kind to its protobuf enum.
func ItemKindToProto(k pluginapi.ItemKind) proto.ItemKind {
	switch k {
	case pluginapi.ItemTree:
		return proto.ItemKind_ITEM_KIND_TREE
	case pluginapi.ItemStream:
		return proto.ItemKind_ITEM_KIND_STREAM
	}
	return proto.ItemKind_ITEM_KIND_UNSPECIFIED
}

// ItemKindFromProto maps a protobuf item kind to pluginapi.ItemKind; an
// unknown kind maps to 0, which no item may have.
func ItemKindFromProto(k proto.ItemKind) pluginapi.ItemKind {
	switch k {
	case proto.ItemKind_ITEM_KIND_TREE:
		return pluginapi.ItemTree
	case proto.ItemKind_ITEM_KIND_STREAM:
		return pluginapi.ItemStream
	}
	return 0
}

// CheckItem reports what is wrong with an item header, whichever side made
// it: a name, a known kind, and a tree spec exactly for tree items.
func CheckItem(it pluginapi.Item) error {
	if it.Name == "" {
		return fmt.Errorf("item has no name")
	}
	switch it.Kind {
	case pluginapi.ItemTree:
		if it.Tree == nil {
			return fmt.Errorf("tree item %q has no tree spec", it.Name)
		}
		if it.Tree.Root == "" {
			return fmt.Errorf("tree item %q has no root", it.Name)
		}
	case pluginapi.ItemStream:
		if it.Tree != nil {
			return fmt.Errorf("stream item %q has a tree spec", it.Name)
		}
	default:
		return fmt.Errorf("item %q has unknown kind %d", it.Name, int(it.Kind))
	}
	return nil
}

// ItemToProto encodes an item header.
func ItemToProto(it pluginapi.Item) *proto.ItemStart {
	out := &proto.ItemStart{
		Name: it.Name,
		Kind: ItemKindToProto(it.Kind),
		Meta: copyMap(it.Meta),
	}
	if it.Tree != nil {
		out.Tree = &proto.TreeSpec{
			Root:          it.Tree.Root,
			Paths:         append([]string(nil), it.Tree.Paths...),
			Excludes:      append([]string(nil), it.Tree.Excludes...),
			OneFileSystem: it.Tree.OneFileSystem,
		}
	}
	return out
}

// ItemFromProto decodes and checks an item header.
func ItemFromProto(ps *proto.ItemStart) (pluginapi.Item, error) {
	if ps == nil {
		return pluginapi.Item{}, fmt.Errorf("no item header")
	}
	it := pluginapi.Item{
		Name: ps.GetName(),
		Kind: ItemKindFromProto(ps.GetKind()),
		Meta: copyMap(ps.GetMeta()),
	}
	if t := ps.GetTree(); t != nil {
		it.Tree = &pluginapi.TreeSpec{
			Root:          t.GetRoot(),
			Paths:         append([]string(nil), t.GetPaths()...),
			Excludes:      append([]string(nil), t.GetExcludes()...),
			OneFileSystem: t.GetOneFileSystem(),
		}
	}
	if err := CheckItem(it); err != nil {
		return pluginapi.Item{}, err
	}
	return it, nil
}

// PlanToProto encodes a capture plan.
func PlanToProto(p *pluginapi.CapturePlan) *proto.PlanCaptureResponse {
	out := &proto.PlanCaptureResponse{}
	if p == nil {
		return out
	}
	for _, e := range p.Items {
		out.Items = append(out.Items, &proto.ItemEstimate{
			Name:   e.Name,
			Kind:   ItemKindToProto(e.Kind),
			Files:  e.Files,
			Bytes:  e.Bytes,
			Detail: e.Detail,
		})
	}
	out.Notes = append([]string(nil), p.Notes...)
	return out
}

// PlanFromProto decodes a capture plan (its diagnostics are handled by the
// caller).
func PlanFromProto(r *proto.PlanCaptureResponse) *pluginapi.CapturePlan {
	out := &pluginapi.CapturePlan{}
	for _, e := range r.GetItems() {
		out.Items = append(out.Items, pluginapi.ItemEstimate{
			Name:   e.GetName(),
			Kind:   ItemKindFromProto(e.GetKind()),
			Files:  e.GetFiles(),
			Bytes:  e.GetBytes(),
			Detail: e.GetDetail(),
		})
	}
	out.Notes = append([]string(nil), r.GetNotes()...)
	return out
}

// CaptureResultToProto encodes the end of a capture.
func CaptureResultToProto(r pluginapi.CaptureResult) *proto.CaptureDone {
	return &proto.CaptureDone{
		Meta:     copyMap(r.Meta),
		Warnings: append([]string(nil), r.Warnings...),
		Partial:  r.Partial,
	}
}

// CaptureResultFromProto decodes the end of a capture.
func CaptureResultFromProto(d *proto.CaptureDone) pluginapi.CaptureResult {
	return pluginapi.CaptureResult{
		Meta:     copyMap(d.GetMeta()),
		Warnings: append([]string(nil), d.GetWarnings()...),
		Partial:  d.GetPartial(),
	}
}

// ObjectInfoToProto encodes an object's description. The zero time
// encodes as 0 ("unknown").
func ObjectInfoToProto(oi pluginapi.ObjectInfo) *proto.ObjectInfo {
	var mtime int64
	if !oi.ModTime.IsZero() {
		mtime = oi.ModTime.UnixNano()
	}
	return &proto.ObjectInfo{Name: oi.Name, Size: oi.Size, MtimeUnixNano: mtime}
}

// ObjectInfoFromProto decodes an object's description.
func ObjectInfoFromProto(po *proto.ObjectInfo) pluginapi.ObjectInfo {
	var mtime time.Time
	if n := po.GetMtimeUnixNano(); n != 0 {
		mtime = time.Unix(0, n)
	}
	return pluginapi.ObjectInfo{Name: po.GetName(), Size: po.GetSize(), ModTime: mtime}
}

// UsageToProto encodes a usage report.
func UsageToProto(u pluginapi.Usage) *proto.UsageResponse {
	return &proto.UsageResponse{TotalBytes: u.TotalBytes, FreeBytes: u.FreeBytes, UsedBytes: u.UsedBytes}
}

// UsageFromProto decodes a usage report.
func UsageFromProto(r *proto.UsageResponse) pluginapi.Usage {
	return pluginapi.Usage{TotalBytes: r.GetTotalBytes(), FreeBytes: r.GetFreeBytes(), UsedBytes: r.GetUsedBytes()}
}

// copyMap copies m, mapping an empty map to nil so that both sides see the
// same thing whether or not protobuf kept an empty map.
func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
