package config

import (
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

var testSchema = &schema.Block{
	Attributes: []*schema.Attribute{
		{Name: "name", Type: cty.String},
		{Name: "list", Type: cty.List(cty.String)},
		{Name: "env", Type: cty.Map(cty.String)},
		{Name: "flag", Type: cty.Bool},
		{Name: "n", Type: cty.Number},
		{Name: "timeout", Type: cty.String},
	},
	Blocks: []*schema.NestedBlock{{
		TypeName: "inner", Nesting: schema.NestingSingle,
		Block: &schema.Block{Attributes: []*schema.Attribute{{Name: "uid", Type: cty.Number}}},
	}},
}

func TestReadersReturnSetValues(t *testing.T) {
	v := MustBuild(testSchema, map[string]cty.Value{
		"name":    cty.StringVal("x"),
		"list":    cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"env":     cty.ObjectVal(map[string]cty.Value{"K": cty.StringVal("V")}),
		"flag":    cty.True,
		"n":       cty.NumberIntVal(98),
		"timeout": cty.StringVal("90s"),
		"inner":   cty.ObjectVal(map[string]cty.Value{"uid": cty.NumberIntVal(7)}),
	})
	o := New(v)
	if s, ok := o.String("name"); !ok || s != "x" {
		t.Errorf("String = %q, %v", s, ok)
	}
	if l, ok, err := o.StringList("list"); !ok || err != nil || strings.Join(l, ",") != "a,b" {
		t.Errorf("StringList = %q, %v, %v", l, ok, err)
	}
	if m, ok, err := o.StringMap("env"); !ok || err != nil || m["K"] != "V" {
		t.Errorf("StringMap = %v, %v, %v", m, ok, err)
	}
	if b, ok := o.Bool("flag"); !ok || !b {
		t.Errorf("Bool = %v, %v", b, ok)
	}
	if n, ok, err := o.Int("n"); !ok || err != nil || n != 98 {
		t.Errorf("Int = %v, %v, %v", n, ok, err)
	}
	if d, err := o.Duration("timeout", "5m"); err != nil || d != 90*time.Second {
		t.Errorf("Duration = %v, %v", d, err)
	}
	in, ok := o.Block("inner")
	if !ok {
		t.Fatal("Block not set")
	}
	if n, ok, _ := in.Int("uid"); !ok || n != 7 {
		t.Errorf("inner uid = %v, %v", n, ok)
	}
}

func TestReadersTreatNullUnknownAndAbsentAsNotSet(t *testing.T) {
	v := MustBuild(testSchema, map[string]cty.Value{"name": cty.UnknownVal(cty.String)})
	o := New(v)
	if _, ok := o.String("name"); ok {
		t.Error("unknown string is set")
	}
	if !o.IsUnknown("name") || o.IsSet("name") {
		t.Error("IsUnknown/IsSet wrong for an unknown value")
	}
	if _, ok, err := o.StringList("list"); ok || err != nil {
		t.Error("null list is set")
	}
	if _, ok := o.String("no_such_attribute"); ok {
		t.Error("absent attribute is set")
	}
	if _, ok := o.Block("inner"); ok {
		t.Error("absent block is set")
	}
	if d, err := o.Duration("timeout", "5m"); err != nil || d != 5*time.Minute {
		t.Errorf("default duration = %v, %v", d, err)
	}
	// Whatever arrives, the readers do not panic.
	for _, bad := range []cty.Value{cty.NilVal, cty.NullVal(cty.DynamicPseudoType), cty.StringVal("x"), cty.UnknownVal(cty.DynamicPseudoType)} {
		o := New(bad)
		o.String("name")
		o.StringList("list")
		o.StringMap("env")
		o.Int("n")
		o.Bool("flag")
		o.Block("inner")
	}
}

func TestReadersReportBadValues(t *testing.T) {
	o := New(cty.ObjectVal(map[string]cty.Value{
		"list": cty.ListVal([]cty.Value{cty.StringVal("a"), cty.NullVal(cty.String)}),
		"n":    cty.NumberFloatVal(1.5),
		"t":    cty.StringVal("1M"),
		"z":    cty.StringVal("0s"),
	}))
	if _, _, err := o.StringList("list"); err == nil || !strings.Contains(err.Error(), "element 1 is null") {
		t.Errorf("null element: %v", err)
	}
	if _, _, err := o.Int("n"); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("fraction: %v", err)
	}
	if _, err := o.Duration("t", "5m"); err == nil || !strings.Contains(err.Error(), "months or years") {
		t.Errorf("calendar timeout: %v", err)
	}
	if _, err := o.Duration("z", "5m"); err == nil || !strings.Contains(err.Error(), "longer than zero") {
		t.Errorf("zero timeout: %v", err)
	}
}

func TestLabelNamesTheBlockAsWritten(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"target.nas.home", `target nas "home"`},
		{`target.nas.site["blog"]`, `target nas "site"["blog"]`},
		{"", "target nas"},
	}
	for _, tt := range tests {
		got := Label(schema.KindTarget, sdk.Instance{TypeName: "nas", Address: tt.addr})
		if got != tt.want {
			t.Errorf("Label(%q) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestBuildRefusesUnknownArguments(t *testing.T) {
	if _, err := Build(testSchema, map[string]cty.Value{"nme": cty.StringVal("x")}); err == nil || !strings.Contains(err.Error(), "nme") {
		t.Fatalf("err = %v", err)
	}
}
