// Package hcl is runner's configuration language: it parses a directory of
// *.hcl files, evaluates variables, locals and block references in
// dependency order, decodes plugin blocks with the schemas their plugins
// publish, and reports every problem as a diagnostic with file, line and a
// source snippet.
//
// Callers usually import it as config, since they also use hashicorp/hcl.
package hcl

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/policies"
)

// DefaultDir is where runner looks for its configuration without -C.
const DefaultDir = "/etc/runner"

// Config is a fully evaluated configuration.
type Config struct {
	Dir       string
	Runner    RunnerSettings
	Variables map[string]cty.Value
	Plugins   []*PluginDecl
	Hooks     []*Block
	Targets   []*Block
	Sources   []*Block
	Notifiers []*Block
	Policies  []*Policy
	Jobs      []*Job
}

// RunnerSettings is the runner block.
type RunnerSettings struct {
	StateDir   string
	LogFile    string
	Parallel   int
	PluginDirs []string
	// MetricsFile receives Prometheus text-format metrics after every run
	// (for node_exporter's textfile collector); "" for none.
	MetricsFile string
	// InhibitShutdown holds a systemd-logind inhibitor lock while jobs run.
	InhibitShutdown bool
}

// Default runner settings.
const (
	DefaultStateDir = "/var/lib/runner"
	DefaultParallel = 2
)

// PluginDecl is a plugin "NAME" { path, sha256 } block: an external plugin
// pinned by checksum.
type PluginDecl struct {
	Name      string
	Path      string
	SHA256    string
	DeclRange hcl.Range
}

// Block is one plugin-owned top-level block (source, target, hook, notify)
// with its instances: one, or one per for_each element.
type Block struct {
	Kind      schema.Kind
	TypeName  string
	Name      string
	DeclRange hcl.Range
	ForEach   bool
	Instances []*Instance
}

// Address is the block's address, e.g. source.wordpress.site.
func (b *Block) Address() string {
	return b.Kind.String() + "." + b.TypeName + "." + b.Name
}

// Instance is one evaluated instance of a plugin block.
type Instance struct {
	Block   *Block
	Address string    // source.files.docs or source.wordpress.site["blog"]
	Key     string    // for_each key, "" without for_each
	Config  cty.Value // the plugin's configuration object (schema-typed)
	// Hooks are the hook instances a target wraps its use with.
	Hooks []*Instance
	// MinFreeRatio (targets): free space must be at least this many times
	// the largest quota of the jobs on the target; 0 disables the check.
	MinFreeRatio float64
	// PasswordFile (targets): the file holding the repository passphrase;
	// "" means the repository is not encrypted. Relative paths are
	// relative to the configuration directory.
	PasswordFile string
}

// Policy is a policy block, parsed.
type Policy struct {
	Name             string
	DeclRange        hcl.Range
	Schedule         policies.Schedule // nil: due at every apply
	ScheduleText     string
	CatchUp          *policies.Duration
	FullEvery        *policies.Duration
	KeepLast         int
	KeepHourly       int
	KeepDaily        int
	KeepWeekly       int
	KeepMonthly      int
	KeepYearly       int
	KeepWithin       *policies.Duration
	KeepTags         []string
	MaxSize          int64 // bytes, 0 = no quota
	MaxForgetsPerRun int   // 0 = no limit
	Quiet            []policies.Window
}

// Role of a job on this server.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Job is one job instance.
type Job struct {
	Name      string // site or site["blog"]
	BlockName string
	Key       string
	DeclRange hcl.Range
	Source    *Instance
	Target    *Instance
	Policy    *Policy // nil: no policy
	Role      Role
	Hooks     []*Instance
	Notify    []*Instance
	Enabled   bool
	Timeout   time.Duration
}

// Job returns the job instance called name, accepting site["blog"],
// site[blog] and site.blog for for_each instances.
func (c *Config) Job(name string) *Job {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j
		}
		if j.Key != "" && (name == j.BlockName+"["+j.Key+"]" || name == j.BlockName+"."+j.Key) {
			return j
		}
	}
	return nil
}

// Instance finds a plugin block instance by address.
func (c *Config) Instance(addr string) *Instance {
	for _, list := range [][]*Block{c.Sources, c.Targets, c.Hooks, c.Notifiers} {
		for _, b := range list {
			for _, in := range b.Instances {
				if in.Address == addr {
					return in
				}
			}
		}
	}
	return nil
}
