// Package wordpress is the built-in "wordpress" plugin: the source
// "wordpress", which captures one WordPress site consistently (its files,
// its database as read from wp-config.php, its TLS certificates and
// web-server configuration) and applies such a snapshot back (restore in
// place, restore beside the live site, replicas), and the HCL functions
// that find sites and read the per-site files of the old backup script.
//
//	locals { vhosts = "/srv/www/vhosts" }
//
//	source "wordpress" "site" {
//	  for_each     = wordpress_sites(local.vhosts)
//	  root         = each.value                        # the WordPress root
//	  site_dir     = "${local.vhosts}/${each.key}"     # back up the whole vhost
//	  certificates = ["/etc/letsencrypt/live/${each.key}"]
//	  server_config = ["/etc/nginx/sites-available/${each.key}"]
//	  maintenance  = true
//	}
//
// See README.md in this directory for every attribute, the items and
// metadata a snapshot holds, and the restore contract.
package wordpress

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/internal/secret"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/mysql/dump"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// TypeName is the source type this package provides.
const TypeName = "wordpress"

// Item names besides the database's (which are package dump's:
// DB/TABLE, DB/TABLE:N, DB:objects).
const (
	ItemFiles        = "files"
	ItemCertificates = "certificates"
	ItemServerConfig = "server_config"
)

// Snapshot meta keys (besides package dump's mysql.* keys).
const (
	MetaVersion     = "wordpress.version"
	MetaSiteURL     = "wordpress.siteurl"
	MetaHome        = "wordpress.home"
	MetaRoot        = "wordpress.root"
	MetaSiteDir     = "wordpress.site_dir"
	MetaDBName      = "wordpress.db_name"
	MetaTablePrefix = "wordpress.table_prefix"
	// MetaDBScope is "database" when the whole database was dumped, or
	// "prefix" when only the tables of the site's prefix were (the
	// database holds other tables).
	MetaDBScope      = "wordpress.db_scope"
	MetaCertificates = "wordpress.certificates"  // JSON list of the configured paths
	MetaServerConfig = "wordpress.server_config" // JSON list of the configured paths
)

// Restore options (sdk.ApplyRequest.Options).
const (
	// OptDatabase loads the database into this database instead of the
	// live site's DB_NAME. Required with a Destination.
	OptDatabase = "database"
	// OptForce = "true" replaces the tables of an existing database (the
	// host sets it for restores into place and replicas).
	OptForce = "force"
	// OptParallel overrides the number of loading connections.
	OptParallel = "parallel"
)

// DefaultExcludes are left out of the site's files unless
// default_excludes = false: caches WordPress and its common plugins
// regenerate, and files that only exist during an update. They are
// relative to the WordPress root.
var DefaultExcludes = []string{
	"/.maintenance",                    // maintenance mode marker (present only during updates)
	"/wp-content/cache/",               // page caches: WP Super Cache, W3 Total Cache, WP Rocket, WP Fastest Cache, ...
	"/wp-content/uploads/cache/",       // image and CSS caches of several plugins and themes
	"/wp-content/et-cache/",            // Divi / Extra generated CSS
	"/wp-content/litespeed/",           // LiteSpeed Cache generated CSS/JS
	"/wp-content/upgrade/",             // temporary unpack directory of updates
	"/wp-content/upgrade-temp-backup/", // temporary copies WordPress keeps during updates
}

// Plugin returns the wordpress plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:      "wordpress",
		Version:   config.Version,
		Sources:   map[string]sdk.Source{TypeName: &Source{}},
		Functions: functions(),
	}
}

// Source is the wordpress source.
type Source struct{}

var (
	_ sdk.Source    = (*Source)(nil)
	_ sdk.Applier   = (*Source)(nil)
	_ sdk.Validator = (*Source)(nil)
)

// Schema describes the source block.
func (*Source) Schema() *schema.Block {
	list := cty.List(cty.String)
	return &schema.Block{
		Description: "A WordPress site: its files, its database (read from wp-config.php), certificates and web-server configuration, captured consistently.",
		Attributes: []*schema.Attribute{
			{Name: "root", Type: cty.String, Required: true, Description: "Absolute path of the WordPress root (the directory holding wp-includes/ and wp-config.php)."},
			{Name: "site_dir", Type: cty.String, Description: "Absolute path of the directory whose files are backed up: root itself (the default) or a directory above it, such as the vhost directory holding SITE/ and logs."},
			{Name: "exclude", Type: list, Description: `gitignore-like patterns relative to site_dir: "*.log", "/logs/".`},
			{Name: "exclude_file", Type: cty.String, Description: "Absolute path of a file of exclude patterns, one a line."},
			{Name: "default_excludes", Type: cty.Bool, Description: "Leave out caches WordPress regenerates (wp-content/cache/ and others; default true)."},
			{Name: "certificates", Type: list, Description: "Absolute paths (directories or files) of the site's TLS certificates, e.g. /etc/letsencrypt/live/example.org; symlinks are stored and followed, so the files they point to are stored too."},
			{Name: "server_config", Type: list, Description: "Absolute paths of the site's web-server configuration (files or directories), stored like certificates."},
			{Name: "maintenance", Type: cty.Bool, Description: "Put the site in WordPress maintenance mode (.maintenance) while its database and files are captured or restored."},
			{Name: "dsn", Type: cty.String, Description: "Overrides DB_HOST and DB_USER of wp-config.php: user@tcp(host:port)/ or user@unix(/path/to/socket)/."},
			{Name: "password_file", Type: cty.String, Description: "Overrides DB_PASSWORD of wp-config.php: a file readable by its owner only."},
			{Name: "db_socket", Type: cty.String, Description: `The Unix socket DB_HOST "localhost" means (PHP's mysqli.default_socket; default /run/mysqld/mysqld.sock).`},
			{Name: "parallel", Type: cty.Number, Description: "Database connections for dumps and loads (default 1: a consistent dump without the RELOAD privilege a WordPress user lacks)."},
			{Name: "connect_timeout", Type: cty.String, Description: `Limit for connecting to the database (default "10s").`},
		},
	}
}

// settings is a decoded configuration.
type settings struct {
	root, siteDir   string
	exclude         []string
	excludeFile     string
	defaultExcludes bool
	certificates    []string
	serverConfig    []string
	maintenance     bool
	dsn             string
	passwordFile    string
	socket          string
	parallel        int
	connectTimeout  time.Duration
}

func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{defaultExcludes: true, socket: DefaultSocket, parallel: 1}
	var diags schema.Diagnostics
	errf := func(attr, format string, args ...any) {
		diags = append(diags, schema.Errorf([]string{attr}, format, args...))
	}
	abs := func(attr string) (string, bool) {
		p, ok := o.String(attr)
		if !ok {
			return "", false
		}
		if !filepath.IsAbs(p) {
			errf(attr, "%s must be an absolute path, not %q", attr, p)
			return "", false
		}
		return filepath.Clean(p), true
	}
	if r, ok := abs("root"); ok {
		s.root = r
	} else if !o.IsUnknown("root") && !o.IsSet("root") {
		errf("root", "root must name the WordPress root")
	}
	s.siteDir = s.root
	if d, ok := abs("site_dir"); ok {
		s.siteDir = d
		if s.root != "" && d != s.root && !strings.HasPrefix(s.root, strings.TrimSuffix(d, "/")+"/") {
			errf("site_dir", "site_dir %s must be root (%s) or a directory above it", d, s.root)
		}
	}
	if ex, _, err := o.StringList("exclude"); err != nil {
		errf("exclude", "exclude: %v", err)
	} else {
		for _, p := range ex {
			if _, err := pathmatch.Compile(p); err != nil {
				errf("exclude", "exclude: %v", err)
			}
		}
		s.exclude = ex
	}
	if f, ok := abs("exclude_file"); ok {
		s.excludeFile = f
	}
	if b, ok := o.Bool("default_excludes"); ok {
		s.defaultExcludes = b
	}
	for _, a := range []struct {
		name string
		dst  *[]string
	}{{"certificates", &s.certificates}, {"server_config", &s.serverConfig}} {
		l, _, err := o.StringList(a.name)
		if err != nil {
			errf(a.name, "%s: %v", a.name, err)
		}
		seen := map[string]bool{}
		for _, p := range l {
			if !filepath.IsAbs(p) {
				errf(a.name, "%s: %q is not an absolute path", a.name, p)
				continue
			}
			p = filepath.Clean(p)
			if p == "/" {
				errf(a.name, "%s: / is not a certificate or configuration path", a.name)
				continue
			}
			if !seen[p] {
				seen[p] = true
				*a.dst = append(*a.dst, p)
			}
		}
	}
	s.maintenance, _ = o.Bool("maintenance")
	if dsn, ok := o.String("dsn"); ok {
		_, hasPw, err := dump.ParseDSN(dsn)
		switch {
		case err != nil:
			errf("dsn", "%v", err)
		case hasPw:
			errf("dsn", "dsn must not hold a password: put it in a file and set password_file")
		}
		s.dsn = dsn
	}
	if pf, ok := abs("password_file"); ok {
		s.passwordFile = pf
	}
	if sock, ok := abs("db_socket"); ok {
		s.socket = sock
	}
	if n, ok, err := o.Int("parallel"); err != nil {
		errf("parallel", "parallel: %v", err)
	} else if ok {
		if n < 1 || n > 64 {
			errf("parallel", "parallel must be between 1 and 64, not %d", n)
		}
		s.parallel = int(n)
	}
	if !o.IsUnknown("connect_timeout") {
		d, err := o.Duration("connect_timeout", "10s")
		if err != nil {
			errf("connect_timeout", "connect_timeout: %v", err)
		}
		s.connectTimeout = d
	}
	return s, diags
}

// Validate checks the configuration. It reads nothing, neither
// wp-config.php nor the password file, and contacts no server:
// validation runs on every runner invocation, possibly on a server that
// holds only a replica of the site, or none yet.
func (*Source) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decode(v)
	return diags
}

// site is a configured site with what wp-config.php says.
type site struct {
	*settings
	label  string // `source wordpress "site"["blog"]`
	cfg    *WPConfig
	conn   dump.ConnOptions
	dbName string
	prefix string
}

// errorf makes an error naming the site: the block and its root.
func (s *site) errorf(format string, args ...any) error {
	return fmt.Errorf("%s (WordPress site %s): %s", s.label, s.root, fmt.Sprintf(format, args...))
}

// openSite decodes the configuration and reads the site's wp-config.php
// (wpConfig overrides where it is looked for; "" finds it from root).
func openSite(inst sdk.Instance, wpConfig string) (*site, error) {
	label := config.Label(schema.KindSource, inst)
	st, diags := decode(inst.Config)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	s := &site{settings: st, label: label}
	if wpConfig == "" {
		p, err := FindWPConfig(st.root)
		if err != nil {
			return nil, s.errorf("%v", err)
		}
		wpConfig = p
	}
	if err := s.readConfig(wpConfig); err != nil {
		return nil, err
	}
	return s, nil
}

// readConfig parses wp-config.php and works out the connection.
func (s *site) readConfig(path string) error {
	c, err := ReadWPConfig(path)
	if err != nil {
		return s.errorf("%v", err)
	}
	s.cfg = c
	need := []string{keyDBName, keyPrefix}
	if s.dsn == "" {
		need = append(need, keyDBUser, keyDBHost)
	}
	if s.passwordFile == "" {
		need = append(need, keyDBPass)
	}
	for _, k := range need {
		if err := c.Need(k); err != nil {
			hint := ""
			switch k {
			case keyDBPass:
				hint = " (or set password_file)"
			case keyDBUser, keyDBHost:
				hint = " (or set dsn)"
			}
			return s.errorf("%v%s", err, hint)
		}
	}
	if c.DBName == "" {
		return s.errorf("%s: DB_NAME is empty", path)
	}
	s.dbName, s.prefix = c.DBName, c.TablePrefix
	s.conn.ConnectTimeout = s.connectTimeout
	if s.dsn != "" {
		o, _, err := dump.ParseDSN(s.dsn)
		if err != nil {
			return s.errorf("%v", err)
		}
		s.conn.Addr, s.conn.User = o.Addr, o.User
	} else {
		addr, err := ParseDBHost(c.DBHost, s.socket)
		if err != nil {
			return s.errorf("%s: %v", path, err)
		}
		s.conn.Addr, s.conn.User = addr, c.DBUser
	}
	if s.passwordFile != "" {
		pw, err := secret.ReadFile("password_file", s.passwordFile)
		if err != nil {
			return s.errorf("%v", err)
		}
		s.conn.Password = pw
	} else {
		s.conn.Password = c.DBPassword
	}
	return nil
}

// rootRel is the WordPress root relative to site_dir ("" when they are
// the same), slash-separated.
func (s *settings) rootRel() string {
	if s.root == s.siteDir {
		return ""
	}
	r, _ := filepath.Rel(s.siteDir, s.root)
	return filepath.ToSlash(r)
}

// excludes returns the tree's exclude patterns (relative to site_dir):
// the defaults (anchored under the WordPress root), then exclude, then
// exclude_file's.
func (s *settings) excludes(forceMaintenance bool) ([]string, error) {
	var out []string
	anchor := func(p string) string {
		if rel := s.rootRel(); rel != "" {
			return "/" + pathmatch.Escape(rel) + p
		}
		return p
	}
	if s.defaultExcludes {
		for _, p := range DefaultExcludes {
			out = append(out, anchor(p))
		}
	} else if forceMaintenance {
		out = append(out, anchor("/.maintenance"))
	}
	out = append(out, s.exclude...)
	if s.excludeFile != "" {
		f, err := os.Open(s.excludeFile)
		if err != nil {
			return nil, fmt.Errorf("exclude_file: %w", err)
		}
		more, err := pathmatch.ReadPatterns(f)
		_ = f.Close() // read-only
		if err != nil {
			return nil, fmt.Errorf("exclude_file %s: %w", s.excludeFile, err)
		}
		out = append(out, more...)
	}
	if _, err := pathmatch.New(out); err != nil {
		return nil, fmt.Errorf("exclude: %w", err)
	}
	return out, nil
}
