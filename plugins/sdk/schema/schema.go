// Package schema describes the configuration blocks and functions a runner
// plugin provides. It is pure data: the plugin SDK sends it over the wire and
// the host turns it into HCL decoder specs, so a typo in a plugin attribute is
// reported exactly like a typo in a core attribute.
package schema

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/zclconf/go-cty/cty"
)

// Kind is the kind of top-level block a plugin block type belongs to.
type Kind int

const (
	KindSource Kind = iota + 1
	KindTarget
	KindHook
	KindNotify
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindSource, KindTarget, KindHook, KindNotify}

// String returns the HCL block name of the kind ("source", "target", ...).
func (k Kind) String() string {
	switch k {
	case KindSource:
		return "source"
	case KindTarget:
		return "target"
	case KindHook:
		return "hook"
	case KindNotify:
		return "notify"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// Block is the schema of a block body: its attributes and nested blocks.
type Block struct {
	Attributes  []*Attribute
	Blocks      []*NestedBlock
	Description string
}

// Attribute is one attribute of a block.
type Attribute struct {
	Name        string
	Type        cty.Type
	Description string
	Required    bool
	// Sensitive values are never printed in plans, logs or errors.
	Sensitive bool
}

// Nesting says how often a nested block may appear and what value it makes.
type Nesting int

const (
	// NestingSingle: at most one; the value is an object, or null if absent.
	NestingSingle Nesting = iota + 1
	// NestingList: any number; the value is a list of objects.
	NestingList
	// NestingMap: any number, each with one label; the value is a map of objects.
	NestingMap
)

// NestedBlock is a block inside a block, such as expect { uid = 98 }.
type NestedBlock struct {
	TypeName string
	Block    *Block
	Nesting  Nesting
	MinItems int
	MaxItems int // 0 means no limit
}

// BlockType is a top-level block type a plugin provides, e.g. source "files".
type BlockType struct {
	Kind     Kind
	TypeName string
	Block    *Block
}

// Function is an HCL function a plugin adds to the configuration language.
type Function struct {
	Name        string
	Params      []Parameter
	Variadic    *Parameter
	ReturnType  cty.Type
	Description string
}

// Parameter is one parameter of a Function.
type Parameter struct {
	Name      string
	Type      cty.Type
	AllowNull bool
}

// Severity of a Diagnostic.
type Severity int

const (
	Error Severity = iota + 1
	Warning
)

// Diagnostic is a problem a plugin found in its configuration. Path names the
// attribute it concerns, e.g. ["expect", "uid"], so the host can point at the
// line; an empty path means the whole block.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Path     []string
}

// Errorf returns an error Diagnostic about the attribute at path.
func Errorf(path []string, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: Error, Summary: fmt.Sprintf(format, args...), Path: path}
}

// Diagnostics is a list of Diagnostic.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Attribute returns the attribute called name, or nil.
func (b *Block) Attribute(name string) *Attribute {
	for _, a := range b.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// ImpliedType is the cty object type a body decoded with this schema has.
func (b *Block) ImpliedType() cty.Type {
	atys := make(map[string]cty.Type, len(b.Attributes)+len(b.Blocks))
	for _, a := range b.Attributes {
		atys[a.Name] = a.Type
	}
	for _, nb := range b.Blocks {
		inner := nb.Block.ImpliedType()
		switch nb.Nesting {
		case NestingList:
			atys[nb.TypeName] = cty.List(inner)
		case NestingMap:
			atys[nb.TypeName] = cty.Map(inner)
		default:
			atys[nb.TypeName] = inner
		}
	}
	return cty.Object(atys)
}

var identRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Reserved names are meta-arguments the host owns on every plugin block;
// a plugin schema may not use them.
var Reserved = []string{"for_each", "hooks", "depends_on", "count", "provider", "lifecycle"}

// Validate checks that a schema is well-formed: names are lower-case
// identifiers, unique, not reserved, and every type is known.
func (b *Block) Validate() error {
	return b.validate("", true)
}

func (b *Block) validate(prefix string, top bool) error {
	seen := map[string]bool{}
	check := func(name string) error {
		if !identRe.MatchString(name) {
			return fmt.Errorf("%s%q: names must be lower-case identifiers", prefix, name)
		}
		if seen[name] {
			return fmt.Errorf("%s%q is declared twice", prefix, name)
		}
		seen[name] = true
		if top {
			for _, r := range Reserved {
				if r == name {
					return fmt.Errorf("%s%q is a meta-argument reserved by runner", prefix, name)
				}
			}
		}
		return nil
	}
	for _, a := range b.Attributes {
		if err := check(a.Name); err != nil {
			return err
		}
		if a.Type == cty.NilType {
			return fmt.Errorf("%s%q has no type", prefix, a.Name)
		}
	}
	for _, nb := range b.Blocks {
		if err := check(nb.TypeName); err != nil {
			return err
		}
		if nb.Block == nil {
			return fmt.Errorf("%s%q has no block schema", prefix, nb.TypeName)
		}
		switch nb.Nesting {
		case NestingSingle, NestingList, NestingMap:
		default:
			return fmt.Errorf("%s%q has no nesting mode", prefix, nb.TypeName)
		}
		if err := nb.Block.validate(prefix+nb.TypeName+".", false); err != nil {
			return err
		}
	}
	return nil
}

// Sorted returns the schema's attribute names in order, for stable output.
func (b *Block) Sorted() []string {
	names := make([]string, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return names
}
