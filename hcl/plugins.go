package hcl

import (
	"context"
	"errors"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// ErrNotProvided is returned by a PluginResolver when no plugin provides the
// block type or function asked for.
var ErrNotProvided = errors.New("no plugin provides it")

// PluginResolver is what the configuration language needs from the plugin
// host: the schemas of plugin block types, plugin functions, and the
// plugins' own checks of their configuration. The host implements it; tests
// may use a static one.
type PluginResolver interface {
	// BlockSchema returns the schema of kind/typeName, or an error wrapping
	// ErrNotProvided.
	BlockSchema(ctx context.Context, kind schema.Kind, typeName string) (*schema.Block, error)
	// BlockTypes lists the type names of a kind that are provided, for
	// suggestions in diagnostics.
	BlockTypes(ctx context.Context, kind schema.Kind) []string
	// Function returns the plugin function called name, or an error wrapping
	// ErrNotProvided.
	Function(ctx context.Context, name string) (function.Function, error)
	// ValidateBlock asks the providing plugin to check a decoded config.
	ValidateBlock(ctx context.Context, kind schema.Kind, typeName string, config cty.Value) (schema.Diagnostics, error)
}
