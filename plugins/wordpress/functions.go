package wordpress

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/policies"
)

// Names of the per-site files of the old backup script.
const (
	QuotaFile     = "max_NAS_space"    // the site's NAS quota in MB
	FullEveryFile = "full_backup_freq" // 1M, 1W, 28D, 3M, ...
	PrimaryMarker = "PRIMARY_IS_"      // PRIMARY_IS_<hostname>
)

// PreferredSubdir is the subdirectory of a vhost directory looked at
// first for the WordPress root.
const PreferredSubdir = "SITE"

func functions() map[string]sdk.Function {
	str := cty.String
	return map[string]sdk.Function{
		"wordpress_sites": {
			Spec: schema.Function{
				Name:        "wordpress_sites",
				Description: "Finds the WordPress sites under a vhosts directory: a map of site name (the vhost directory's name) to WordPress root.",
				Params:      []schema.Parameter{{Name: "root", Type: str}},
				ReturnType:  cty.Map(cty.String),
			},
			Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
				root := args[0].AsString()
				if !filepath.IsAbs(root) {
					return cty.NilVal, &sdk.ArgError{Index: 0, Err: fmt.Errorf("wordpress_sites: %q is not an absolute path", root)}
				}
				sites, err := FindSites(root)
				if err != nil {
					return cty.NilVal, err
				}
				if len(sites) == 0 {
					return cty.MapValEmpty(cty.String), nil
				}
				m := map[string]cty.Value{}
				for k, v := range sites {
					m[k] = cty.StringVal(v)
				}
				return cty.MapVal(m), nil
			},
		},
		"wordpress_quota": {
			Spec: schema.Function{
				Name:        "wordpress_quota",
				Description: "The site's NAS quota from SITE_DIR/max_NAS_space (megabytes, as the old backup script read it) as a size such as \"1000MB\", or default when the file does not exist.",
				Params:      []schema.Parameter{{Name: "site_dir", Type: str}, {Name: "default", Type: str}},
				ReturnType:  str,
			},
			Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
				dir, def := args[0].AsString(), args[1].AsString()
				if !filepath.IsAbs(dir) {
					return cty.NilVal, &sdk.ArgError{Index: 0, Err: fmt.Errorf("wordpress_quota: %q is not an absolute path", dir)}
				}
				q, err := ReadQuota(dir, def)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(q), nil
			},
		},
		"wordpress_full_every": {
			Spec: schema.Function{
				Name:        "wordpress_full_every",
				Description: "The site's full-backup frequency from SITE_DIR/full_backup_freq (1M, 1W, 28D, 3M, as duplicity wrote them) as a runner duration (1M, 1w, 28d, 3M), or default when the file does not exist.",
				Params:      []schema.Parameter{{Name: "site_dir", Type: str}, {Name: "default", Type: str}},
				ReturnType:  str,
			},
			Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
				dir, def := args[0].AsString(), args[1].AsString()
				if !filepath.IsAbs(dir) {
					return cty.NilVal, &sdk.ArgError{Index: 0, Err: fmt.Errorf("wordpress_full_every: %q is not an absolute path", dir)}
				}
				d, err := ReadFullEvery(dir, def)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(d), nil
			},
		},
		"wordpress_primary": {
			Spec: schema.Function{
				Name:        "wordpress_primary",
				Description: "The host named by the site's PRIMARY_IS_<host> marker file in SITE_DIR, or \"\" when there is none.",
				Params:      []schema.Parameter{{Name: "site_dir", Type: str}},
				ReturnType:  str,
			},
			Impl: func(_ context.Context, args []cty.Value) (cty.Value, error) {
				dir := args[0].AsString()
				if !filepath.IsAbs(dir) {
					return cty.NilVal, &sdk.ArgError{Index: 0, Err: fmt.Errorf("wordpress_primary: %q is not an absolute path", dir)}
				}
				h, err := ReadPrimary(dir)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(h), nil
			},
		},
	}
}

// IsWordPressRoot reports whether dir is a WordPress root: it holds
// wp-config.php and wp-includes/version.php.
func IsWordPressRoot(dir string) bool {
	for _, f := range []string{wpConfigPHP, "wp-includes/version.php"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// FindSites looks for WordPress sites under root: every immediate
// subdirectory of root (a vhost directory; symlinks to directories
// count, hidden ones are skipped) is a site when its WordPress root is
// found, looked for in this order:
//
//  1. the vhost directory itself;
//  2. its subdirectory SITE;
//  3. its only immediate subdirectory that is a WordPress root.
//
// A vhost directory with no WordPress root is not a site (static sites,
// sites whose files are half gone: wp-config.php without
// wp-includes/version.php). One with several candidates in step 3 is an
// error naming them, as picking one would back up the wrong site
// silently. The result maps the vhost directory's name to the absolute
// WordPress root.
func FindSites(root string) (map[string]string, error) {
	root = filepath.Clean(root)
	entries, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("wordpress_sites: %s does not exist", root)
		}
		return nil, fmt.Errorf("wordpress_sites: %w", err)
	}
	sites := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(root, name)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		wp, err := siteRoot(dir)
		if err != nil {
			return nil, err
		}
		if wp != "" {
			sites[name] = wp
		}
	}
	return sites, nil
}

// siteRoot finds the WordPress root of one vhost directory ("" if none).
func siteRoot(dir string) (string, error) {
	if IsWordPressRoot(dir) {
		return dir, nil
	}
	if p := filepath.Join(dir, PreferredSubdir); IsWordPressRoot(p) {
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil // an unreadable vhost directory is not a WordPress site we can back up
	}
	var found []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(p); err == nil && fi.IsDir() && IsWordPressRoot(p) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return filepath.Join(dir, found[0]), nil
	}
	sort.Strings(found)
	return "", fmt.Errorf("wordpress_sites: %s holds several WordPress roots (%s) and none is named %s: configure this site explicitly", dir, strings.Join(found, ", "), PreferredSubdir)
}

// readSmallFile reads a per-site setting file; ok is false when it does
// not exist.
func readSmallFile(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if len(b) > 4096 {
		return "", false, fmt.Errorf("%s: too large for a setting (%d bytes)", path, len(b))
	}
	// The old files hold one value; comments are not part of the format,
	// but blank lines around it are tolerated.
	return strings.TrimSpace(string(b)), true, nil
}

var megabytes = regexp.MustCompile(`^[0-9]+$`)

// ReadQuota reads dir/max_NAS_space: a whole number of megabytes (the old
// script's unit) becomes "<n>MB"; a size with a unit is taken as it is.
// A missing file gives def.
func ReadQuota(dir, def string) (string, error) {
	p := filepath.Join(dir, QuotaFile)
	text, ok, err := readSmallFile(p)
	if err != nil {
		return "", err
	}
	if !ok {
		return def, nil
	}
	if megabytes.MatchString(text) {
		text += "MB"
	}
	n, err := policies.ParseSize(text)
	if err != nil {
		return "", fmt.Errorf("%s: %v (want megabytes, e.g. 1000)", p, err)
	}
	if n <= 0 {
		return "", fmt.Errorf("%s: the quota must be larger than zero", p)
	}
	return text, nil
}

var duplicityDuration = regexp.MustCompile(`^([0-9]+)([smhDWMYdwy])$`)

// ReadFullEvery reads dir/full_backup_freq, written as duplicity's
// --full-if-older-than takes it (1M, 1W, 28D, 3M; units s, m, h, D, W, M,
// Y), and returns the runner duration (1M, 1w, 28d, 3M). A missing file
// gives def.
func ReadFullEvery(dir, def string) (string, error) {
	p := filepath.Join(dir, FullEveryFile)
	text, ok, err := readSmallFile(p)
	if err != nil {
		return "", err
	}
	if !ok {
		return def, nil
	}
	m := duplicityDuration.FindStringSubmatch(text)
	if m == nil {
		return "", fmt.Errorf("%s: %q is not a duplicity interval such as 1M, 1W, 28D or 3M", p, text)
	}
	unit := map[string]string{"s": "s", "m": "m", "h": "h", "D": "d", "d": "d", "W": "w", "w": "w", "M": "M", "Y": "y", "y": "y"}[m[2]]
	out := m[1] + unit
	if d, err := policies.ParseDuration(out); err != nil {
		return "", fmt.Errorf("%s: %v", p, err)
	} else if d == (policies.Duration{}) {
		return "", fmt.Errorf("%s: %q is zero", p, text)
	}
	return out, nil
}

// ReadPrimary returns the host of dir's PRIMARY_IS_<host> marker ("" if
// there is none); several markers are an error naming them.
func ReadPrimary(dir string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, PrimaryMarker+"*"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("wordpress_primary: %s does not exist", dir)
		}
		return "", err
	}
	var hosts []string
	for _, m := range matches {
		if h := strings.TrimPrefix(filepath.Base(m), PrimaryMarker); h != "" {
			hosts = append(hosts, h)
		}
	}
	switch len(hosts) {
	case 0:
		return "", nil
	case 1:
		return hosts[0], nil
	}
	sort.Strings(hosts)
	var names []string
	for _, h := range hosts {
		names = append(names, filepath.Join(dir, PrimaryMarker+h))
	}
	return "", fmt.Errorf("several primary markers: %s: keep exactly one", strings.Join(names, ", "))
}
