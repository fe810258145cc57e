// Package mysql is the built-in "mysql" source: consistent, parallel,
// verified dumps of MariaDB and MySQL databases, one stream item per
// table (or per primary key range of a large table), and restores
// through a staging database. The engine is package dump; this package
// is its configuration and the plugin protocol around it.
//
//	source "mysql" "main" {
//	  dsn            = "backup@tcp(127.0.0.1:3306)/"
//	  password_file  = "/etc/runner/mysql-backup.password"   # mode 0600
//	  databases      = ["blog", "shop"]                       # default: all but the system ones
//	  exclude_tables = ["*.wp_sessions", "*.*_log"]
//	  parallel       = 4
//	}
//
// See docs/MYSQL.md for the options, the format and the restore
// semantics.
package mysql

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/secret"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/mysql/dump"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/policies"
)

// TypeName is the source type this package provides.
const TypeName = "mysql"

// Restore options (sdk.ApplyRequest.Options).
const (
	// OptDatabase: load the snapshot's only database into this one.
	OptDatabase = "database"
	// OptDatabasePrefix + OLD = NEW maps one database of several.
	OptDatabasePrefix = "database."
	// OptForce = "true" replaces the tables of the same names in a target
	// database that holds tables.
	OptForce = "force"
	// OptUsersAndGrants = "true" also creates the dumped accounts.
	OptUsersAndGrants = "users_and_grants"
	// OptParallel overrides the number of loading connections.
	OptParallel = "parallel"
	// OptBinlog = "false" loads without writing the binary log (SET
	// sql_log_bin = 0; needs SUPER or BINLOG ADMIN). Faster, but replicas
	// and point-in-time recovery do not see the restore.
	OptBinlog = "binlog"
)

// Plugin returns the mysql plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "mysql",
		Version: config.Version,
		Sources: map[string]sdk.Source{TypeName: &Source{}},
	}
}

// Source is the mysql source.
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
		Description: "A MariaDB or MySQL server: consistent, parallel, verified dumps, one stream item per table.",
		Attributes: []*schema.Attribute{
			{Name: "dsn", Type: cty.String, Description: `Server address as user@tcp(host:port)/ or user@unix(/path/to/socket)/, without a password. Alternative to host/port/socket/user.`},
			{Name: "host", Type: cty.String, Description: "Server host (with port); default 127.0.0.1 unless socket is set."},
			{Name: "port", Type: cty.Number, Description: "Server TCP port (default 3306)."},
			{Name: "socket", Type: cty.String, Description: "Absolute path of the server's Unix socket."},
			{Name: "user", Type: cty.String, Description: "User name (required without dsn)."},
			{Name: "password_file", Type: cty.String, Description: "File holding the password (mode 0600 or stricter; one trailing newline is ignored)."},
			{Name: "databases", Type: list, Description: "Databases to dump (default: every database but mysql, information_schema, performance_schema and sys)."},
			{Name: "include_tables", Type: list, Description: `Only tables matching one of these globs on "db.table" (e.g. "blog.wp_*"); a pattern without a dot matches the table in every database.`},
			{Name: "exclude_tables", Type: list, Description: `Tables matching one of these globs on "db.table" are left out (e.g. "*.wp_sessions", "*.*_log").`},
			{Name: "parallel", Type: cty.Number, Description: "Worker connections for dumps and restores (default: the number of CPUs for dumps, four times that for restores)."},
			{Name: "chunk_size", Type: cty.String, Description: `Split tables larger than this into items by primary key range (default "64MB"; "0" never splits).`},
			{Name: "checksums", Type: cty.Bool, Description: "Record CHECKSUM TABLE of every table at dump time and compare after a restore (default true)."},
			{Name: "users_and_grants", Type: cty.Bool, Description: "Also dump accounts and their grants (restored only on request)."},
			{Name: "connect_timeout", Type: cty.String, Description: `Limit for connecting (default "10s").`},
		},
	}
}

// settings is a decoded configuration.
type settings struct {
	conn         dump.ConnOptions
	passwordFile string
	filter       dump.Filter
	parallel     int
	chunk        int64
	checksums    bool
	users        bool
}

func decode(v cty.Value) (*settings, schema.Diagnostics) {
	o := config.New(v)
	s := &settings{checksums: true, chunk: 64 << 20}
	var diags schema.Diagnostics
	errf := func(attr, format string, args ...any) {
		diags = append(diags, schema.Errorf([]string{attr}, format, args...))
	}
	dsn, hasDSN := o.String("dsn")
	host, hasHost := o.String("host")
	sock, hasSock := o.String("socket")
	user, hasUser := o.String("user")
	port, hasPort, err := o.Int("port")
	if err != nil {
		errf("port", "port: %v", err)
	}
	switch {
	case hasDSN:
		if hasHost || hasSock || hasUser || hasPort {
			errf("dsn", "set either dsn or host/port/socket/user, not both")
		}
		c, hasPw, err := dump.ParseDSN(dsn)
		switch {
		case err != nil:
			errf("dsn", "%v", err)
		case hasPw:
			errf("dsn", "dsn must not hold a password: put it in a file and set password_file")
		}
		s.conn = c
	case !o.IsUnknown("dsn"):
		if !hasUser && !o.IsUnknown("user") {
			errf("user", "set user (or dsn)")
		}
		s.conn.User = user
		switch {
		case hasSock:
			if !filepath.IsAbs(sock) {
				errf("socket", "socket must be an absolute path, not %q", sock)
			}
			if hasHost || hasPort {
				errf("socket", "set either socket or host/port, not both")
			}
			s.conn.Addr = sock
		default:
			if !hasHost {
				host = "127.0.0.1"
			}
			if !hasPort {
				port = 3306
			}
			if port <= 0 || port > 65535 {
				errf("port", "port %d is out of range", port)
			}
			s.conn.Addr = net.JoinHostPort(host, strconv.FormatInt(port, 10))
		}
	}
	if pf, ok := o.String("password_file"); ok {
		if !filepath.IsAbs(pf) {
			errf("password_file", "password_file must be an absolute path, not %q", pf)
		}
		s.passwordFile = pf
	}
	for _, a := range []struct {
		name string
		dst  *[]string
	}{{"databases", &s.filter.Databases}, {"include_tables", &s.filter.IncludeTables}, {"exclude_tables", &s.filter.ExcludeTables}} {
		l, _, err := o.StringList(a.name)
		if err != nil {
			errf(a.name, "%s: %v", a.name, err)
		}
		*a.dst = l
	}
	if err := s.filter.Check(); err != nil {
		errf("exclude_tables", "%v", err)
	}
	if n, ok, err := o.Int("parallel"); err != nil {
		errf("parallel", "parallel: %v", err)
	} else if ok {
		if n < 1 || n > 64 {
			errf("parallel", "parallel must be between 1 and 64, not %d", n)
		}
		s.parallel = int(n)
	}
	if cs, ok := o.String("chunk_size"); ok {
		n, err := policies.ParseSize(cs)
		switch {
		case err != nil:
			errf("chunk_size", "chunk_size: %v", err)
		case n == 0:
			s.chunk = -1
		case n < 1<<20:
			errf("chunk_size", "chunk_size %q is below 1MB", cs)
		default:
			s.chunk = n
		}
	}
	if b, ok := o.Bool("checksums"); ok {
		s.checksums = b
	}
	s.users, _ = o.Bool("users_and_grants")
	if !o.IsUnknown("connect_timeout") {
		d, err := o.Duration("connect_timeout", "10s")
		if err != nil {
			errf("connect_timeout", "connect_timeout: %v", err)
		}
		s.conn.ConnectTimeout = d
	}
	return s, diags
}

// Validate checks the configuration without contacting any server. It
// reads the password file's mode (a file group or others can read is
// refused) but never prints the password.
func (*Source) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	s, diags := decode(v)
	if s.passwordFile != "" && !diags.HasErrors() {
		if _, err := secret.ReadFile("password_file", s.passwordFile); err != nil {
			diags = append(diags, schema.Errorf([]string{"password_file"}, "%v", err))
		}
	}
	return diags
}

// open decodes an instance's configuration and reads its password.
func open(v cty.Value) (*settings, error) {
	s, diags := decode(v)
	if diags.HasErrors() {
		return nil, fmt.Errorf("invalid configuration: %s", diags[0].Summary)
	}
	if s.passwordFile != "" {
		pw, err := secret.ReadFile("password_file", s.passwordFile)
		if err != nil {
			return nil, err
		}
		s.conn.Password = pw
	}
	return s, nil
}

// PlanCapture estimates, read-only, what a capture would hold.
func (*Source) PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	s, err := open(inst.Config)
	if err != nil {
		return nil, err
	}
	tables, err := dump.Estimate(ctx, s.conn, s.filter)
	if err != nil {
		return nil, err
	}
	plan := &sdk.CapturePlan{}
	var rows, bytes int64
	for _, t := range tables {
		plan.Items = append(plan.Items, sdk.ItemEstimate{
			Name: dump.ItemName(t.Database, t.Table), Kind: sdk.ItemStream, Bytes: t.Bytes,
			Detail: fmt.Sprintf("~%d rows, %s", t.Rows, t.Engine),
		})
		rows += t.Rows
		bytes += t.Bytes
	}
	plan.Notes = append(plan.Notes, fmt.Sprintf("%d tables, ~%d rows, ~%s of data on %s (estimates from information_schema)", len(tables), rows, policies.FormatSize(bytes), s.conn.Addr))
	return plan, nil
}

// Capture dumps the selected databases as one consistent snapshot.
func (*Source) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) error {
	s, err := open(inst.Config)
	if err != nil {
		return err
	}
	cfg := dump.Config{
		Conn: s.conn, Filter: s.filter, Parallel: s.parallel, ChunkBytes: s.chunk,
		NoChecksums: !s.checksums, UsersAndGrants: s.users, Log: sdk.Logger(),
	}
	res, err := dump.Dump(ctx, cfg, func(it dump.Item) (dump.ItemWriter, error) {
		return w.Stream(sdk.Item{Name: it.Name, Kind: sdk.ItemStream, Meta: it.Meta})
	})
	if err != nil {
		return err
	}
	return w.Done(sdk.CaptureResult{Meta: res.Manifest.Meta(res.NonTransactional), Warnings: res.Warnings})
}

// Apply restores a snapshot into the configured server (see LoadConfig
// in package dump), or, with a Destination, writes its items there as
// .sql files for the mariadb client.
func (*Source) Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	m, err := dump.DecodeManifest(req.SnapshotMeta[dump.MetaManifest])
	if err != nil {
		return err
	}
	if req.Destination != "" {
		return writeFiles(req, r)
	}
	s, err := open(req.Instance.Config)
	if err != nil {
		return err
	}
	cfg := dump.LoadConfig{Conn: s.conn, Parallel: s.parallel, Manifest: m, DryRun: req.DryRun, Log: sdk.Logger(), Target: map[string]string{}}
	for k, v := range req.Options {
		switch {
		case k == OptDatabase:
			if len(m.Databases) != 1 {
				var names []string
				for _, d := range m.Databases {
					names = append(names, d.Name)
				}
				return fmt.Errorf("the snapshot holds %d databases (%s): name the target of each with the option database.OLD=NEW", len(m.Databases), strings.Join(names, ", "))
			}
			cfg.Target[m.Databases[0].Name] = v
		case strings.HasPrefix(k, OptDatabasePrefix):
			cfg.Target[strings.TrimPrefix(k, OptDatabasePrefix)] = v
		case k == OptForce:
			cfg.Force, err = strconv.ParseBool(v)
		case k == OptUsersAndGrants:
			cfg.UsersAndGrants, err = strconv.ParseBool(v)
		case k == OptParallel:
			cfg.Parallel, err = strconv.Atoi(v)
		case k == OptBinlog:
			var on bool
			on, err = strconv.ParseBool(v)
			cfg.NoBinlog = !on
		default:
			return fmt.Errorf("unknown restore option %q for a mysql source (known: database, database.OLD, force, users_and_grants, parallel, binlog)", k)
		}
		if err != nil {
			return fmt.Errorf("restore option %s=%q: %v", k, v, err)
		}
	}
	for _, name := range cfg.Target {
		if name == "" || len(name) > 64 {
			return fmt.Errorf("%q is not a valid database name", name)
		}
	}
	start := time.Now()
	res, err := dump.Load(ctx, cfg, func() (dump.Item, io.Reader, error) {
		it, body, err := r.Next()
		if err != nil {
			return dump.Item{}, nil, err
		}
		return dump.Item{Name: it.Name, Meta: it.Meta}, body, nil
	})
	if err != nil {
		return err
	}
	var dbs []string
	for _, d := range m.Databases {
		name := d.Name
		if t := cfg.Target[name]; t != "" {
			name = t
		}
		dbs = append(dbs, name)
	}
	if req.DryRun {
		req.Note("would restore %d tables into %s (staging database, verified, then swapped in)", len(m.Tables), strings.Join(dbs, ", "))
		return sdk.DrainItems(r)
	}
	sdk.Logger().Info("mysql restore done", "tables", res.Tables, "rows", res.Rows, "checksums_verified", res.Verified, "seconds", time.Since(start).Seconds())
	req.Note("restored %d tables (%d rows) into %s, checksums verified: %v", res.Tables, res.Rows, strings.Join(dbs, ", "), res.Verified)
	return nil
}

// writeFiles writes every item as DIR/<item name>.sql, loadable with the
// mariadb client in the order of the snapshot (see docs/MYSQL.md).
func writeFiles(req sdk.ApplyRequest, r sdk.ItemReader) error {
	if req.DryRun {
		return sdk.DrainItems(r)
	}
	for {
		it, body, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(req.Destination, filepath.FromSlash(strings.ReplaceAll(it.Name, ":", "#"))+".sql")
		if !strings.HasPrefix(p, filepath.Clean(req.Destination)+string(filepath.Separator)) {
			return fmt.Errorf("item %q escapes the destination", it.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if body != nil {
			_, err = io.Copy(f, body)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
