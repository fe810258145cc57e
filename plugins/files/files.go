// Package files is the built-in "files" source: directories (or single
// files) of the local machine, with gitignore-like excludes.
//
//	source "files" "etc" {
//	  paths           = ["/etc", "/root"]
//	  exclude         = ["*.swp", "/root/.cache/"]
//	  exclude_file    = "/etc/runner/excludes"
//	  one_file_system = true
//	  exclude_caches  = true
//	}
//
// Each path becomes one tree item whose root is the path, so exclude
// patterns are relative to it: "/cache/" means <path>/cache, not /cache.
// The host reads the files itself; Capture only names the trees.
package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeName is the source type this package provides.
const TypeName = "files"

// Plugin returns the files plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "files",
		Version: config.Version,
		Sources: map[string]sdk.Source{TypeName: &Files{}},
	}
}

// Files is the files source.
type Files struct{}

var (
	_ sdk.Source    = (*Files)(nil)
	_ sdk.Validator = (*Files)(nil)
)

// Schema describes the source block.
func (*Files) Schema() *schema.Block {
	return &schema.Block{
		Description: "Local directories or files.",
		Attributes: []*schema.Attribute{
			{Name: "paths", Type: cty.List(cty.String), Required: true, Description: "Absolute paths to back up; each is one item."},
			{Name: "exclude", Type: cty.List(cty.String), Description: `gitignore-like patterns relative to each path: "*.tmp", "/cache/", "**/node_modules/", "!keep.log".`},
			{Name: "exclude_file", Type: cty.String, Description: "Absolute path of a file of exclude patterns, one a line; # starts a comment."},
			{Name: "one_file_system", Type: cty.Bool, Description: "Do not descend into other file systems mounted below a path."},
			{Name: "exclude_caches", Type: cty.Bool, Description: "Skip directories that contain a valid CACHEDIR.TAG."},
		},
	}
}

type settings struct {
	paths         []string // cleaned
	exclude       []string
	excludeFile   string
	oneFileSystem bool
	excludeCaches bool
}

func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{}
	var diags schema.Diagnostics
	if !o.IsUnknown("paths") {
		paths, ok, err := o.StringList("paths")
		switch {
		case err != nil:
			diags = append(diags, schema.Errorf([]string{"paths"}, "paths: %v", err))
		case !ok || len(paths) == 0:
			diags = append(diags, schema.Errorf([]string{"paths"}, "paths must list at least one absolute path"))
		}
		seen := map[string]bool{}
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				diags = append(diags, schema.Errorf([]string{"paths"}, "paths: %q is not an absolute path", p))
				continue
			}
			c := filepath.Clean(p)
			if seen[c] {
				diags = append(diags, schema.Errorf([]string{"paths"}, "paths: %s is listed twice", c))
				continue
			}
			seen[c] = true
			s.paths = append(s.paths, c)
		}
	}
	if !o.IsUnknown("exclude") {
		ex, _, err := o.StringList("exclude")
		if err != nil {
			diags = append(diags, schema.Errorf([]string{"exclude"}, "exclude: %v", err))
		}
		for _, p := range ex {
			if _, err := pathmatch.Compile(p); err != nil {
				diags = append(diags, schema.Errorf([]string{"exclude"}, "exclude: %v", err))
			}
		}
		s.exclude = ex
	}
	if f, ok := o.String("exclude_file"); ok {
		if !filepath.IsAbs(f) {
			diags = append(diags, schema.Errorf([]string{"exclude_file"}, "exclude_file must be an absolute path, not %q", f))
		}
		s.excludeFile = f
	}
	s.oneFileSystem, _ = o.Bool("one_file_system")
	s.excludeCaches, _ = o.Bool("exclude_caches")
	return s, diags
}

// Validate checks the configuration. It reads nothing from disk: the
// configuration may be validated on another machine than the one it
// backs up.
func (*Files) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	s, diags := decode(v)
	// Paths inside other paths are captured twice.
	for _, a := range s.paths {
		for _, b := range s.paths {
			if a != b && strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") {
				diags = append(diags, schema.Diagnostic{
					Severity: schema.Warning, Path: []string{"paths"},
					Summary: fmt.Sprintf("paths: %s is inside %s and will be stored in both items", a, b),
				})
			}
		}
	}
	// A common slip: writing an exclude as an absolute path, when patterns
	// are relative to each path.
	for _, ex := range s.exclude {
		pat := strings.TrimPrefix(ex, "!")
		for _, p := range s.paths {
			if p != "/" && strings.HasPrefix(pat, p+"/") {
				diags = append(diags, schema.Diagnostic{
					Severity: schema.Warning, Path: []string{"exclude"},
					Summary: fmt.Sprintf("exclude %q looks like an absolute path, but patterns are relative to each path: for %s write %q", ex, p, strings.TrimPrefix(pat, p)),
				})
			}
		}
	}
	return diags
}

// load decodes the instance's configuration and reads its exclude file.
func load(inst sdk.Instance) (*settings, *pathmatch.Matcher, []string, error) {
	label := config.Label(schema.KindSource, inst)
	s, diags := decode(inst.Config)
	if diags.HasErrors() {
		return nil, nil, nil, fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	patterns := append([]string(nil), s.exclude...)
	if s.excludeFile != "" {
		f, err := os.Open(s.excludeFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: exclude_file: %w", label, err)
		}
		more, err := pathmatch.ReadPatterns(f)
		_ = f.Close() // read-only: a close error cannot lose data
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: exclude_file %s: %w", label, s.excludeFile, err)
		}
		patterns = append(patterns, more...)
	}
	m, err := pathmatch.New(patterns)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: exclude: %w", label, err)
	}
	return s, m, patterns, nil
}

// PlanCapture walks every path, read-only, and counts what Capture would
// store: files and their bytes, after excludes.
func (*Files) PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	s, m, _, err := load(inst)
	if err != nil {
		return nil, err
	}
	plan := &sdk.CapturePlan{}
	for _, p := range s.paths {
		st, err := walk(ctx, p, m, s.oneFileSystem, s.excludeCaches, true)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: plan %s: %w", config.Label(schema.KindSource, inst), p, ctx.Err())
		}
		est := sdk.ItemEstimate{Name: p, Kind: sdk.ItemTree}
		if err != nil {
			est.Detail = pathErrText(err)
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s: %s; the capture will fail", p, pathErrText(err)))
			plan.Items = append(plan.Items, est)
			continue
		}
		est.Files, est.Bytes, est.Detail = st.files, st.bytes, st.detail()
		if st.symlink {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s is a symbolic link: only the link is stored, not what it points to", p))
		}
		if st.unreadable > 0 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s: %d %s unreadable (first: %s)", p, st.unreadable, plural(st.unreadable, "entry", "entries"), st.firstUnreadable))
		}
		plan.Items = append(plan.Items, est)
	}
	return plan, nil
}

// Capture names one tree item per path. With exclude_caches it first
// walks the paths to find the tagged cache directories and adds an
// anchored exclude for each, since the tree spec carries patterns only.
func (*Files) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	label := config.Label(schema.KindSource, inst)
	s, m, patterns, err := load(inst)
	if err != nil {
		return err
	}
	var warnings []string
	for _, p := range s.paths {
		if _, err := os.Lstat(p); err != nil {
			return fmt.Errorf("%s: %s", label, pathErrText(err))
		}
		excludes := append([]string(nil), patterns...)
		if s.excludeCaches {
			st, err := walk(ctx, p, m, s.oneFileSystem, true, false)
			if err != nil {
				return fmt.Errorf("%s: look for cache directories in %s: %w", label, p, err)
			}
			for _, rel := range st.caches {
				excludes = append(excludes, "/"+pathmatch.Escape(rel)+"/")
			}
			if st.unreadable > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d %s unreadable while looking for CACHEDIR.TAG (first: %s)", p, st.unreadable, plural(st.unreadable, "entry", "entries"), st.firstUnreadable))
			}
		}
		item := sdk.Item{
			Name: p,
			Kind: sdk.ItemTree,
			Tree: &sdk.TreeSpec{Root: p, Excludes: excludes, OneFileSystem: s.oneFileSystem},
		}
		if err := w.Tree(item); err != nil {
			return fmt.Errorf("%s: item %s: %w", label, p, err)
		}
	}
	paths, err := json.Marshal(s.paths)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if err := w.Done(sdk.CaptureResult{Meta: map[string]string{"paths": string(paths)}, Warnings: warnings}); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// pathErrText renders a path error as "/x does not exist" rather than Go's
// "lstat /x: no such file or directory".
func pathErrText(err error) string {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return pe.Path + " does not exist"
	}
	return pe.Path + ": " + pe.Err.Error()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
