// Command runner-plugin-hello is an example external plugin for runner,
// built on nothing but the plugin SDK (plugins/sdk). It provides:
//
//   - source "command": captures the standard output of a command (an
//     argument list, no shell) as one stream item, for things that can dump
//     themselves: pg_dumpall, tar -cf - ..., an export script;
//   - the HCL function greeting(name).
//
// Build it as runner-plugin-hello and declare it in the configuration with
// a plugin "hello" { path = ..., sha256 = ... } block (see README.md).
package main

import "github.com/backup-runner/runner/plugins/sdk"

// version is reported to `runner plugins`.
const version = "0.1.0"

func main() {
	sdk.Serve(New())
}

// New returns the plugin. Tests use it with sdktest.Start.
func New() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "hello",
		Version: version,
		Sources: map[string]sdk.Source{
			"command": commandSource{},
		},
		Functions: map[string]sdk.Function{
			"greeting": greeting,
		},
	}
}
