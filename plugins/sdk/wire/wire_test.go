package wire

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

func sampleBlock() *schema.Block {
	return &schema.Block{
		Description: "a mysql source",
		Attributes: []*schema.Attribute{
			{Name: "host", Type: cty.String, Required: true, Description: "server"},
			{Name: "port", Type: cty.Number},
			{Name: "password", Type: cty.String, Sensitive: true},
			{Name: "tables", Type: cty.List(cty.String)},
			{Name: "labels", Type: cty.Map(cty.String)},
			{Name: "anything", Type: cty.DynamicPseudoType},
			{Name: "opts", Type: cty.Object(map[string]cty.Type{"a": cty.Bool, "b": cty.Set(cty.Number)})},
		},
		Blocks: []*schema.NestedBlock{
			{TypeName: "expect", Nesting: schema.NestingSingle, Block: &schema.Block{
				Attributes: []*schema.Attribute{{Name: "uid", Type: cty.Number}},
			}},
			{TypeName: "rule", Nesting: schema.NestingList, MinItems: 1, MaxItems: 3, Block: &schema.Block{
				Attributes: []*schema.Attribute{{Name: "keep", Type: cty.Number, Required: true}},
			}},
			{TypeName: "db", Nesting: schema.NestingMap, Block: &schema.Block{}},
		},
	}
}

func TestBlockRoundTrip(t *testing.T) {
	in := sampleBlock()
	pb, err := BlockToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := BlockFromProto(pb)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.ImpliedType(), out.ImpliedType()) || !out.ImpliedType().Equals(in.ImpliedType()) {
		t.Fatalf("implied type changed: %#v vs %#v", in.ImpliedType(), out.ImpliedType())
	}
	for i, a := range in.Attributes {
		b := out.Attributes[i]
		if a.Name != b.Name || !a.Type.Equals(b.Type) || a.Required != b.Required ||
			a.Sensitive != b.Sensitive || a.Description != b.Description {
			t.Errorf("attribute %d: %+v became %+v", i, a, b)
		}
	}
	for i, nb := range in.Blocks {
		ob := out.Blocks[i]
		if nb.TypeName != ob.TypeName || nb.Nesting != ob.Nesting || nb.MinItems != ob.MinItems || nb.MaxItems != ob.MaxItems {
			t.Errorf("block %d: %+v became %+v", i, nb, ob)
		}
	}
	if out.Description != in.Description {
		t.Errorf("description %q became %q", in.Description, out.Description)
	}
}

func TestBlockToProtoRejectsBadSchemas(t *testing.T) {
	tests := map[string]*schema.Block{
		"nil block":         nil,
		"attribute no type": {Attributes: []*schema.Attribute{{Name: "x"}}},
		"nested no block":   {Blocks: []*schema.NestedBlock{{TypeName: "x", Nesting: schema.NestingList}}},
		"nested no nesting": {Blocks: []*schema.NestedBlock{{TypeName: "x", Block: &schema.Block{}}}},
		"negative count":    {Blocks: []*schema.NestedBlock{{TypeName: "x", Nesting: schema.NestingList, Block: &schema.Block{}, MinItems: -1}}},
		"nil attribute":     {Attributes: []*schema.Attribute{nil}},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := BlockToProto(b); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestBlockFromProtoRejectsGarbage(t *testing.T) {
	tests := map[string]*proto.Block{
		"bad type json":  {Attributes: []*proto.Attribute{{Name: "x", Type: []byte(`"nonsense"`)}}},
		"missing type":   {Attributes: []*proto.Attribute{{Name: "x"}}},
		"no nesting":     {Blocks: []*proto.NestedBlock{{TypeName: "x", Block: &proto.Block{}}}},
		"no inner block": {Blocks: []*proto.NestedBlock{{TypeName: "x", Nesting: proto.NestedBlock_NESTING_LIST}}},
		"negative max":   {Blocks: []*proto.NestedBlock{{TypeName: "x", Nesting: proto.NestedBlock_NESTING_LIST, Block: &proto.Block{}, MaxItems: -2}}},
	}
	for name, pb := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := BlockFromProto(pb); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestBlockTypeRoundTrip(t *testing.T) {
	for _, k := range schema.Kinds {
		in := schema.BlockType{Kind: k, TypeName: "x", Block: sampleBlock()}
		pbt, err := BlockTypeToProto(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := BlockTypeFromProto(pbt)
		if err != nil {
			t.Fatal(err)
		}
		if out.Kind != k || out.TypeName != "x" || !out.Block.ImpliedType().Equals(in.Block.ImpliedType()) {
			t.Errorf("%s: got %+v", k, out)
		}
	}
	if _, err := BlockTypeToProto(schema.BlockType{Kind: 99, TypeName: "x", Block: &schema.Block{}}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := BlockTypeFromProto(&proto.BlockType{TypeName: "x", Block: &proto.Block{}}); err == nil {
		t.Error("unspecified kind accepted")
	}
}

func TestFunctionRoundTrip(t *testing.T) {
	in := schema.Function{
		Name:        "wordpress_sites",
		Description: "lists sites",
		Params: []schema.Parameter{
			{Name: "root", Type: cty.String},
			{Name: "opts", Type: cty.DynamicPseudoType, AllowNull: true},
		},
		Variadic:   &schema.Parameter{Name: "more", Type: cty.Number},
		ReturnType: cty.Map(cty.Object(map[string]cty.Type{"path": cty.String})),
	}
	pf, err := FunctionToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := FunctionFromProto(pf)
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.Description != in.Description || len(out.Params) != 2 ||
		!out.Params[1].Type.Equals(cty.DynamicPseudoType) || !out.Params[1].AllowNull ||
		out.Variadic == nil || !out.Variadic.Type.Equals(cty.Number) || !out.ReturnType.Equals(in.ReturnType) {
		t.Fatalf("got %+v", out)
	}
	if _, err := FunctionToProto(schema.Function{Name: "f"}); err == nil {
		t.Error("function without return type accepted")
	}
}

func TestValueRoundTrip(t *testing.T) {
	values := map[string]cty.Value{
		"string":  cty.StringVal("héllo"),
		"number":  cty.NumberFloatVal(3.25),
		"big int": cty.MustParseNumberVal("123456789012345678901234567890"),
		"bool":    cty.True,
		"null":    cty.NullVal(cty.String),
		"unknown": cty.UnknownVal(cty.Number),
		"list":    cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"empty":   cty.ListValEmpty(cty.String),
		"set":     cty.SetVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
		"object": cty.ObjectVal(map[string]cty.Value{
			"host": cty.StringVal("db"),
			"nested": cty.ObjectVal(map[string]cty.Value{
				"uid": cty.NumberIntVal(98),
			}),
			"tags": cty.MapVal(map[string]cty.Value{"a": cty.StringVal("1")}),
		}),
		"tuple": cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1)}),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			pv, err := ValueToProto(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ValueFromProto(pv)
			if err != nil {
				t.Fatal(err)
			}
			if !got.RawEquals(v) {
				t.Fatalf("got %#v, want %#v", got, v)
			}
		})
	}
}

func TestValueMarksAreDropped(t *testing.T) {
	v := cty.ObjectVal(map[string]cty.Value{"password": cty.StringVal("s3cret").Mark("sensitive")})
	pv, err := ValueToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ValueFromProto(pv)
	if err != nil {
		t.Fatal(err)
	}
	if got.ContainsMarked() || got.GetAttr("password").AsString() != "s3cret" {
		t.Fatalf("got %#v", got)
	}
}

func TestNilValue(t *testing.T) {
	pv, err := ValueToProto(cty.NilVal)
	if err != nil || pv != nil {
		t.Fatalf("got %v, %v", pv, err)
	}
	v, err := ValueFromProto(nil)
	if err != nil || v != cty.NilVal {
		t.Fatalf("got %#v, %v", v, err)
	}
	v, err = ValueFromProtoAs(nil, cty.String)
	if err != nil || !v.RawEquals(cty.NullVal(cty.String)) {
		t.Fatalf("got %#v, %v", v, err)
	}
}

func TestValueFromProtoAsConverts(t *testing.T) {
	pv, _ := ValueToProto(cty.ObjectVal(map[string]cty.Value{"port": cty.StringVal("3306")}))
	want := cty.Object(map[string]cty.Type{"port": cty.Number})
	v, err := ValueFromProtoAs(pv, want)
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetAttr("port").RawEquals(cty.NumberIntVal(3306)) {
		t.Fatalf("got %#v", v)
	}
	pv, _ = ValueToProto(cty.ObjectVal(map[string]cty.Value{"port": cty.StringVal("nope")}))
	if _, err := ValueFromProtoAs(pv, want); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("got %v", err)
	}
}

func TestValueFromProtoRejectsGarbage(t *testing.T) {
	ty, _ := TypeToProto(cty.String)
	for name, pv := range map[string]*proto.Value{
		"no type":       {Msgpack: []byte{0xc0}},
		"bad msgpack":   {Msgpack: []byte{0xff, 0x00}, Type: ty},
		"wrong payload": {Msgpack: []byte{0x93, 1, 2, 3}, Type: ty},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ValueFromProto(pv); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestInstanceRoundTrip(t *testing.T) {
	ty := cty.Object(map[string]cty.Type{"path": cty.String})
	in := pluginapi.Instance{
		TypeName: "files",
		Address:  `source.files.docs["x"]`,
		Config:   cty.ObjectVal(map[string]cty.Value{"path": cty.StringVal("/srv")}),
	}
	pi, err := InstanceToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := InstanceFromProto(pi, ty)
	if err != nil {
		t.Fatal(err)
	}
	if out.TypeName != in.TypeName || out.Address != in.Address || !out.Config.RawEquals(in.Config) {
		t.Fatalf("got %#v", out)
	}
	if _, err := InstanceFromProto(nil, ty); err == nil {
		t.Error("nil instance accepted")
	}
}

func TestDiagnosticsRoundTrip(t *testing.T) {
	in := schema.Diagnostics{
		schema.Errorf([]string{"expect", "uid"}, "uid %d is not allowed", 0),
		{Severity: schema.Warning, Summary: "slow", Detail: "consider x"},
	}
	out := DiagnosticsFromProto(DiagnosticsToProto(in))
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v", out)
	}
	if DiagnosticsFromProto(nil) != nil || DiagnosticsToProto(nil) != nil {
		t.Error("empty diagnostics not nil")
	}
	// An unspecified severity must not be mistaken for a harmless warning.
	got := DiagnosticsFromProto([]*proto.Diagnostic{{Summary: "x"}})
	if !got.HasErrors() {
		t.Error("unspecified severity is not an error")
	}
}

func TestItemRoundTrip(t *testing.T) {
	items := []pluginapi.Item{
		{Name: "files", Kind: pluginapi.ItemTree, Tree: &pluginapi.TreeSpec{
			Root: "/srv", Paths: []string{"a", "b/c"}, Excludes: []string{"*.tmp"}, OneFileSystem: true,
		}, Meta: map[string]string{"k": "v"}},
		{Name: "dump.sql", Kind: pluginapi.ItemStream},
	}
	for _, in := range items {
		out, err := ItemFromProto(ItemToProto(in))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("got %#v, want %#v", out, in)
		}
	}
}

func TestItemFromProtoRejectsBadItems(t *testing.T) {
	for name, ps := range map[string]*proto.ItemStart{
		"nil":               nil,
		"no name":           {Kind: proto.ItemKind_ITEM_KIND_STREAM},
		"no kind":           {Name: "x"},
		"tree without spec": {Name: "x", Kind: proto.ItemKind_ITEM_KIND_TREE},
		"tree without root": {Name: "x", Kind: proto.ItemKind_ITEM_KIND_TREE, Tree: &proto.TreeSpec{}},
		"stream with tree":  {Name: "x", Kind: proto.ItemKind_ITEM_KIND_STREAM, Tree: &proto.TreeSpec{Root: "/"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ItemFromProto(ps); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPlanRoundTrip(t *testing.T) {
	in := &pluginapi.CapturePlan{
		Items: []pluginapi.ItemEstimate{{Name: "a", Kind: pluginapi.ItemStream, Files: 1, Bytes: 99, Detail: "dump"}},
		Notes: []string{"would run mysqldump"},
	}
	if out := PlanFromProto(PlanToProto(in)); !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v", out)
	}
	if out := PlanFromProto(PlanToProto(nil)); len(out.Items) != 0 || len(out.Notes) != 0 {
		t.Fatalf("got %#v", out)
	}
}

func TestCaptureResultRoundTrip(t *testing.T) {
	in := pluginapi.CaptureResult{Meta: map[string]string{"gtid": "0-1-100"}, Warnings: []string{"w"}, Partial: true}
	if out := CaptureResultFromProto(CaptureResultToProto(in)); !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v", out)
	}
}

func TestObjectInfoAndUsageRoundTrip(t *testing.T) {
	in := pluginapi.ObjectInfo{Name: "data/ab/cd", Size: 42, ModTime: time.Unix(1700000000, 123)}
	out := ObjectInfoFromProto(ObjectInfoToProto(in))
	if out.Name != in.Name || out.Size != in.Size || !out.ModTime.Equal(in.ModTime) {
		t.Fatalf("got %#v", out)
	}
	if out := ObjectInfoFromProto(ObjectInfoToProto(pluginapi.ObjectInfo{Name: "x"})); !out.ModTime.IsZero() {
		t.Fatalf("zero time became %v", out.ModTime)
	}
	u := pluginapi.Usage{TotalBytes: 100, FreeBytes: -1, UsedBytes: 7}
	if got := UsageFromProto(UsageToProto(u)); got != u {
		t.Fatalf("got %#v", got)
	}
}

func TestKinds(t *testing.T) {
	for _, k := range schema.Kinds {
		got, err := KindFromProto(KindToProto(k))
		if err != nil || got != k {
			t.Errorf("%s: got %v, %v", k, got, err)
		}
	}
	if _, err := KindFromProto(proto.Kind(42)); err == nil {
		t.Error("unknown kind accepted")
	}
}
