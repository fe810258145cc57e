package main

import (
	"context"
	"errors"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// greeting is the HCL function greeting(name): greeting("Ada") is
// "Hello, Ada!". It shows how a plugin adds a function to the configuration
// language and how it blames one argument for an error, so that runner
// points at that argument in its diagnostic.
var greeting = sdk.Function{
	Spec: schema.Function{
		Name:        "greeting",
		Description: "Returns a friendly greeting for name.",
		Params:      []schema.Parameter{{Name: "name", Type: cty.String}},
		ReturnType:  cty.String,
	},
	Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
		name := strings.TrimSpace(args[0].AsString())
		if name == "" {
			return cty.NilVal, &sdk.ArgError{Index: 0, Err: errors.New("name must not be empty")}
		}
		return cty.StringVal("Hello, " + name + "!"), nil
	},
}
