// Package builtin is the catalogue of the plugins compiled into the runner
// binary. The host serves each of them out of process (the runner starts
// itself with a hidden plugin subcommand), through the same path as an
// external plugin, so a built-in plugin has no privileges an external one
// lacks.
package builtin

import (
	"sort"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/exec"
	"github.com/backup-runner/runner/plugins/files"
	"github.com/backup-runner/runner/plugins/mysql"
	"github.com/backup-runner/runner/plugins/nas"
	"github.com/backup-runner/runner/plugins/notify"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/vpn"
	"github.com/backup-runner/runner/plugins/wordpress"
)

// Version is the version every built-in plugin reports.
const Version = config.Version

// constructors lists the built-in plugins. Each call makes fresh values,
// so callers may keep or change what they get.
var constructors = []func() *sdk.Plugin{
	exec.Plugin,
	files.Plugin,
	mysql.Plugin,
	nas.Plugin,
	notify.Plugin,
	vpn.Plugin,
	wordpress.Plugin,
}

// All returns the built-in plugins, sorted by name.
func All() []*sdk.Plugin {
	out := make([]*sdk.Plugin, 0, len(constructors))
	for _, c := range constructors {
		out = append(out, c())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the built-in plugin called name.
func Lookup(name string) (*sdk.Plugin, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}
