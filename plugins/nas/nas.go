// Package nas is the built-in "nas" target: a repository in a directory
// of a mounted file system (a NAS share, a USB disk, a local disk).
//
//	target "nas" "home" {
//	  path   = "/mnt/BackupDesktop/runner"
//	  mount  = "/mnt/BackupDesktop"
//	  expect { uid = 98  gid = 401 }
//	}
//
// Prepare checks that path is an existing directory (inside mount, if
// set) and returns a session whose LocalRoot is path, so the host writes
// the repository directly; the object verbs work on the same files for
// callers that use them.
//
// Not yet: mounting and unmounting mount, and verifying expect (owner,
// group, file system type, marker file) before anything is written. Until
// then Validate warns that expect is not checked.
package nas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
			{Name: "mount", Type: cty.String, Description: "Mount point the path lives under, e.g. the NAS share."},
		},
		Blocks: []*schema.NestedBlock{{
			TypeName: "expect",
			Nesting:  schema.NestingSingle,
			MaxItems: 1,
			Block: &schema.Block{
				Description: "What the mounted root must look like; anything else is refused.",
				Attributes: []*schema.Attribute{
					{Name: "uid", Type: cty.Number, Description: "Owner (numeric uid) of the mount point."},
					{Name: "gid", Type: cty.Number, Description: "Group (numeric gid) of the mount point."},
					{Name: "fstype", Type: cty.String, Description: `File system type of the mount, e.g. "nfs4" or "cifs".`},
					{Name: "marker", Type: cty.String, Description: "A file that must exist, relative to the mount point."},
				},
			},
		}},
	}
}

type settings struct {
	path  string // cleaned
	mount string // cleaned; "" if not set
}

func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{}
	var diags schema.Diagnostics
	if !o.IsUnknown("path") {
		p, ok := o.String("path")
		switch {
		case !ok || p == "":
			diags = append(diags, schema.Errorf([]string{"path"}, "path is required: the absolute path of the repository directory"))
		case !filepath.IsAbs(p):
			diags = append(diags, schema.Errorf([]string{"path"}, "path must be an absolute path, not %q", p))
		default:
			s.path = filepath.Clean(p)
		}
	}
	if m, ok := o.String("mount"); ok {
		if !filepath.IsAbs(m) {
			diags = append(diags, schema.Errorf([]string{"mount"}, "mount must be an absolute path, not %q", m))
		} else {
			s.mount = filepath.Clean(m)
		}
	}
	if s.path != "" && s.mount != "" && !within(s.path, s.mount) {
		diags = append(diags, schema.Errorf([]string{"path"}, "path %s is not inside mount %s", s.path, s.mount))
	}
	if ex, ok := o.Block("expect"); ok {
		for _, name := range []string{"uid", "gid"} {
			n, set, err := ex.Int(name)
			switch {
			case err != nil:
				diags = append(diags, schema.Errorf([]string{"expect", name}, "expect.%s %v", name, err))
			case set && (n < 0 || n > maxID):
				diags = append(diags, schema.Errorf([]string{"expect", name}, "expect.%s must be a %s number from 0 to %d, not %d", name, name, maxID, n))
			}
		}
		if fs, ok := ex.String("fstype"); ok && strings.TrimSpace(fs) == "" {
			diags = append(diags, schema.Errorf([]string{"expect", "fstype"}, "expect.fstype is empty"))
		}
		if mk, ok := ex.String("marker"); ok {
			if mk == "" || filepath.IsAbs(mk) || mk != filepath.Clean(mk) || mk == ".." || strings.HasPrefix(mk, "../") {
				diags = append(diags, schema.Errorf([]string{"expect", "marker"}, "expect.marker must be a file name relative to the mount point, not %q", mk))
			}
		}
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
	if ex, ok := config.New(v).Block("expect"); ok && !diags.HasErrors() {
		for _, name := range []string{"uid", "gid", "fstype", "marker"} {
			if ex.IsSet(name) {
				diags = append(diags, schema.Diagnostic{
					Severity: schema.Warning,
					Path:     []string{"expect"},
					Summary:  "expect is not verified yet by this version of the nas target: nothing stops a backup into an unmounted directory",
				})
				break
			}
		}
	}
	return diags
}

// Prepare checks the repository directory and opens a session on it. It
// only reads, whether readOnly or not: the repository directory must
// exist already (creating it on an unmounted NAS would fill the local
// disk).
func (*NAS) Prepare(ctx context.Context, inst sdk.Instance, readOnly bool) (sdk.Session, error) {
	label := config.Label(schema.KindTarget, inst)
	s, diags := decode(inst.Config)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	fi, err := os.Stat(s.path)
	switch {
	case os.IsNotExist(err):
		return nil, fmt.Errorf("%s: path %s does not exist", label, s.path)
	case err != nil:
		return nil, fmt.Errorf("%s: path: %w", label, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s: path %s is not a directory", label, s.path)
	}
	if s.mount != "" {
		// Compare real paths: a symlink under the mount point could lead
		// the repository off the NAS onto the local disk.
		realMount, err := filepath.EvalSymlinks(s.mount)
		if err != nil {
			return nil, fmt.Errorf("%s: mount: %w", label, err)
		}
		realPath, err := filepath.EvalSymlinks(s.path)
		if err != nil {
			return nil, fmt.Errorf("%s: path: %w", label, err)
		}
		if !within(realPath, realMount) {
			return nil, fmt.Errorf("%s: path %s (really %s) is not inside mount %s (really %s)", label, s.path, realPath, s.mount, realMount)
		}
	}
	return &session{label: label, root: s.path, readOnly: readOnly}, nil
}
