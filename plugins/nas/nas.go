// Package nas is the built-in "nas" target: a repository in a directory
// of a mounted file system (a NAS share, a USB disk, a local disk).
//
//	target "nas" "home" {
//	  path   = "/mnt/BackupDesktop/runner"
//	  mount  = "/mnt/BackupDesktop"          # mounted for the run if it is not
//	  expect {
//	    uid    = 98
//	    fstype = "nfs4"
//	  }
//	}
//
// Prepare brings the mount up if it is not mounted yet (mount(8) with the
// fstab entry, or a systemd mount unit), then verifies, before anything is
// written, that the mount point really is a mount point (its device differs
// from its parent's and /proc/self/mountinfo lists it), that it looks as
// expect says (file system type, owner, group, marker file), that path is
// a directory on that file system, and, unless the session is read-only,
// that a test file can be written, synced, read back and removed. Any
// failed check stops the run, saying what was seen: a NAS that failed to
// mount must never turn into a backup on the local disk under the bare
// mount point.
//
// The session's LocalRoot is path, so the host writes the repository
// directly; the object verbs work on the same files for callers that use
// them. Release unmounts what a runner mounted, and only that: a mount
// someone else made stays. Records under /run/runner (RUNNER_RUN_DIR) make
// this hold across runner processes: a mount stays up while any runner
// process uses it, and a mount left by a run that was killed (kill -9) is
// adopted and taken down by the next run.
package nas

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeName is the target type this package provides.
const TypeName = "nas"

// Plugin returns the nas plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "nas",
		Version: config.Version,
		Targets: map[string]sdk.Target{TypeName: &NAS{}},
	}
}

// NAS is the nas target.
type NAS struct{}

var (
	_ sdk.Target    = (*NAS)(nil)
	_ sdk.Validator = (*NAS)(nil)
	_ sdk.Session   = (*session)(nil)
)

// maxID is the largest uid or gid (32 bits, with -1 reserved).
const maxID = 1<<32 - 2

// Schema describes the target block.
func (*NAS) Schema() *schema.Block {
	return &schema.Block{
		Description: "A repository in a directory of a mounted file system.",
		Attributes: []*schema.Attribute{
			{Name: "path", Type: cty.String, Required: true, Description: "Absolute path of the repository directory."},
			{Name: "create_path", Type: cty.Bool, Description: "Create path (after every check of the mount passed) if it does not exist; default false."},
			{Name: "mount", Type: cty.String, Description: "Mount point the path lives under, e.g. the NAS share; it is mounted for the run if it is not mounted yet, and verified before anything is written."},
			{Name: "mount_with", Type: cty.String, Description: `How to mount: "mount" (mount/umount MOUNTPOINT, using fstab; the default), "systemd" (systemctl start/stop of the mount unit) or "none" (never mount, only verify).`},
			{Name: "mount_unit", Type: cty.String, Description: `The systemd unit to start and stop with mount_with = "systemd"; default: the mount unit of the mount point, e.g. "mnt-nas.mount".`},
			{Name: "mount_command", Type: cty.List(cty.String), Description: "Command that mounts, replacing the default of mount_with: the program, then its arguments."},
			{Name: "umount_command", Type: cty.List(cty.String), Description: "Command that unmounts, replacing the default of mount_with."},
			{Name: "mount_timeout", Type: cty.String, Description: `Limit for each mount and unmount command, e.g. "30s" (default "` + defaultMountTimeout + `").`},
		},
		Blocks: []*schema.NestedBlock{{
			TypeName: "expect",
			Nesting:  schema.NestingSingle,
			MaxItems: 1,
			Block: &schema.Block{
				Description: "What the mounted file system must look like; anything else is refused. Needs mount.",
				Attributes: []*schema.Attribute{
					{Name: "uid", Type: cty.Number, Description: "Owner (numeric uid) of the mount point's root directory."},
					{Name: "gid", Type: cty.Number, Description: "Group (numeric gid) of the mount point's root directory."},
					{Name: "fstype", Type: cty.String, Description: `File system type of the mount as /proc/self/mountinfo shows it, e.g. "nfs4" or "cifs".`},
					{Name: "marker", Type: cty.String, Description: "A file that must exist, relative to the mount point."},
				},
			},
		}},
	}
}

// settings is a decoded configuration.
type settings struct {
	path       string // cleaned
	createPath bool
	mount      string // cleaned; "" if not set
	mounter    *mounter
	expect     expectation
}

// expectation is the expect block; a nil or empty field is not checked.
type expectation struct {
	uid, gid *uint32
	fstype   string
	marker   string
}

// decode reads and checks a configuration. Values that are not known yet
// (during validation) are skipped.
func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{}
	var diags schema.Diagnostics
	errorf := func(path []string, format string, args ...any) {
		diags = append(diags, schema.Errorf(path, format, args...))
	}
	if !o.IsUnknown("path") {
		p, ok := o.String("path")
		switch {
		case !ok || p == "":
			errorf([]string{"path"}, "path is required: the absolute path of the repository directory")
		case !filepath.IsAbs(p):
			errorf([]string{"path"}, "path must be an absolute path, not %q", p)
		default:
			s.path = filepath.Clean(p)
		}
	}
	s.createPath, _ = o.Bool("create_path")
	if m, ok := o.String("mount"); ok {
		switch {
		case !filepath.IsAbs(m):
			errorf([]string{"mount"}, "mount must be an absolute path, not %q", m)
		case filepath.Clean(m) == "/":
			errorf([]string{"mount"}, "mount must not be /: the root file system is always mounted, so nothing could be verified")
		default:
			s.mount = filepath.Clean(m)
		}
	}
	if s.path != "" && s.mount != "" && !within(s.path, s.mount) {
		errorf([]string{"path"}, "path %s is not inside mount %s", s.path, s.mount)
	}
	// Without a mount (or before it is known) the mount settings have
	// nothing to act on; saying so beats ignoring them silently.
	mountKnown := !o.IsUnknown("mount")
	noMount := mountKnown && !o.IsSet("mount")

	with, withSet := o.String("mount_with")
	switch {
	case !withSet:
		with = mountWithMount
	case with != mountWithSystemd && with != mountWithMount && with != mountWithNone:
		errorf([]string{"mount_with"}, `mount_with must be "mount", "systemd" or "none", not %q`, with)
	case noMount:
		errorf([]string{"mount_with"}, "mount_with needs mount: the mount point to bring up")
	}
	unit, unitSet := o.String("mount_unit")
	switch {
	case !unitSet:
	case noMount:
		errorf([]string{"mount_unit"}, "mount_unit needs mount: the mount point to bring up")
	case with != mountWithSystemd && !o.IsUnknown("mount_with"):
		errorf([]string{"mount_unit"}, `mount_unit is only used with mount_with = "systemd"`)
	case strings.TrimSpace(unit) == "" || strings.ContainsAny(unit, "/\x00"):
		errorf([]string{"mount_unit"}, "mount_unit must be a systemd unit name such as \"mnt-nas.mount\", not %q", unit)
	}
	argv := map[string][]string{}
	for _, name := range []string{"mount_command", "umount_command"} {
		list, ok, err := o.StringList(name)
		switch {
		case err != nil:
			errorf([]string{name}, "%s: %v", name, err)
		case !ok:
		case noMount:
			errorf([]string{name}, "%s needs mount: the mount point to bring up", name)
		case with == mountWithNone:
			errorf([]string{name}, `%s is not used with mount_with = "none"`, name)
		case len(list) == 0:
			errorf([]string{name}, "%s must name a program: a list with the program first, then its arguments", name)
		case strings.TrimSpace(list[0]) == "":
			errorf([]string{name}, "%s: the program (first element) is empty", name)
		default:
			argv[name] = list
		}
	}
	var timeout time.Duration // stays 0 only while unknown, in Validate
	if !o.IsUnknown("mount_timeout") {
		d, err := o.Duration("mount_timeout", defaultMountTimeout)
		if err != nil {
			errorf([]string{"mount_timeout"}, "mount_timeout: %v", err)
		}
		timeout = d
	}
	if ex, ok := o.Block("expect"); ok {
		if noMount {
			errorf([]string{"expect"}, "expect needs mount: it describes the file system mounted there")
		}
		for _, name := range []string{"uid", "gid"} {
			n, set, err := ex.Int(name)
			switch {
			case err != nil:
				errorf([]string{"expect", name}, "expect.%s %v", name, err)
			case set && (n < 0 || n > maxID):
				errorf([]string{"expect", name}, "expect.%s must be a %s number from 0 to %d, not %d", name, name, maxID, n)
			case set:
				id := uint32(n)
				if name == "uid" {
					s.expect.uid = &id
				} else {
					s.expect.gid = &id
				}
			}
		}
		if fs, ok := ex.String("fstype"); ok {
			if strings.TrimSpace(fs) == "" {
				errorf([]string{"expect", "fstype"}, "expect.fstype is empty")
			}
			s.expect.fstype = fs
		}
		if mk, ok := ex.String("marker"); ok {
			if mk == "" || filepath.IsAbs(mk) || mk != filepath.Clean(mk) || mk == ".." || strings.HasPrefix(mk, "../") {
				errorf([]string{"expect", "marker"}, "expect.marker must be a file name relative to the mount point, not %q", mk)
			}
			s.expect.marker = mk
		}
	}
	if s.mount != "" && !diags.HasErrors() {
		m, err := newMounter(s.mount, with, unit, argv["mount_command"], argv["umount_command"], timeout)
		if err != nil {
			errorf([]string{"mount"}, "mount: %v", err)
		}
		s.mounter = m
	}
	return s, diags
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// Validate checks the configuration without looking at the file system:
// it may run on another machine than the one that mounts the target.
func (*NAS) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decode(v)
	return diags
}

// Prepare brings the mount up if needed, verifies everything before a byte
// is written (see the package documentation) and opens a session on path.
// A read-only Prepare mounts too, since reading needs the share, but skips
// the write test and never creates path. Whatever this Prepare mounted is
// unmounted again if it fails, and otherwise by Release.
func (*NAS) Prepare(ctx context.Context, inst sdk.Instance, readOnly bool) (sdk.Session, error) {
	label := config.Label(schema.KindTarget, inst)
	s, diags := decode(inst.Config)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	p := &preparation{label: label, s: s, readOnly: readOnly}
	if err := p.run(ctx); err != nil {
		return nil, err
	}
	return &session{label: label, root: s.path, readOnly: readOnly, mount: p.ref}, nil
}
