package wordpress

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/backup-runner/runner/internal/mirror"
	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/mysql/dump"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Destination layout (ApplyRequest.Destination != ""): the site's files
// in DEST/files, the archives under DEST/certificates and
// DEST/server_config with their absolute paths recreated below them
// (DEST/certificates/etc/letsencrypt/live/example.org/...).
const (
	destFiles        = "files"
	destCertificates = "certificates"
	destServerConfig = "server_config"
)

// applyOptions are the decoded ApplyRequest.Options.
type applyOptions struct {
	database string
	force    bool
	parallel int
}

func parseOptions(opts map[string]string) (applyOptions, error) {
	var o applyOptions
	for k, v := range opts {
		var err error
		switch k {
		case OptDatabase:
			o.database = v
			if v == "" || len(v) > 64 {
				err = fmt.Errorf("not a valid database name")
			}
		case OptForce:
			o.force, err = strconv.ParseBool(v)
		case OptParallel:
			o.parallel, err = strconv.Atoi(v)
			if err == nil && (o.parallel < 1 || o.parallel > 64) {
				err = fmt.Errorf("must be between 1 and 64")
			}
		default:
			return o, fmt.Errorf("unknown restore option %q for a wordpress source (known: database, force, parallel)", k)
		}
		if err != nil {
			return o, fmt.Errorf("restore option %s=%q: %v", k, v, err)
		}
	}
	return o, nil
}

// Apply writes a snapshot back. Items arrive in the order Capture wrote
// them: certificates, server_config, files (the host has restored the
// tree into a staging directory, Item.Tree.Root, which must stay until
// Apply returns), then the database items.
//
// Into place (no Destination), in this order, so that a failure leaves
// the site as it was as far as possible:
//
//  1. read the archives into memory and check them; compare the staged
//     files with the live site_dir and copy every new or changed file
//     into a private directory on the site's file system (nothing live
//     changes yet);
//  2. with maintenance = true, put the site in maintenance mode;
//  3. load the database through package dump into a staging database,
//     verify it, and swap its tables in (one atomic RENAME TABLE); the
//     site's tables that the snapshot does not have (by the same prefix
//     rule as the capture) are dropped;
//  4. commit the files (delete, rename into place, fix metadata);
//  5. write the certificates and server_config back to their paths;
//  6. leave maintenance mode.
//
// A failure in 1-3 leaves the site untouched. The database is the live
// site's DB_NAME (from the live wp-config.php, or the snapshot's when the
// site does not exist here yet), or Options["database"]; Options["force"]
// must be "true" to replace the tables of a database that holds tables.
//
// With a Destination the same happens beside the live site: files into
// DEST/files, archives under DEST/certificates and DEST/server_config,
// and the database only into Options["database"], which is required: the
// live database is never touched.
//
// DryRun compares and connects, logs what would change, and changes
// nothing.
func (*Source) Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) (err error) {
	label := config.Label(schema.KindSource, req.Instance)
	st, diags := decode(req.Instance.Config)
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", label, diags[0].Summary)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s (WordPress site %s): %s", label, st.root, fmt.Sprintf(format, args...))
	}
	opts, err := parseOptions(req.Options)
	if err != nil {
		return fail("%v", err)
	}
	inPlace := req.Destination == ""
	if !inPlace {
		if !filepath.IsAbs(req.Destination) {
			return fail("the destination %q is not an absolute path", req.Destination)
		}
		if opts.database == "" {
			return fail("restoring beside the live site needs the name of a database to load into (option database, --to-database): the live database is never touched by a restore to a directory")
		}
	}
	var manifest *dump.Manifest
	if req.SnapshotMeta[dump.MetaManifest] != "" {
		if manifest, err = dump.DecodeManifest(req.SnapshotMeta[dump.MetaManifest]); err != nil {
			return fail("%v", err)
		}
		if len(manifest.Databases) != 1 {
			return fail("the snapshot holds %d databases; a WordPress snapshot holds one", len(manifest.Databases))
		}
	}
	log := sdk.Logger().With("site", st.root)

	// Step 1: everything that is not the database.
	archives := map[string][]archEntry{}
	staged := ""
	var first *sdk.Item
	var firstBody io.Reader
	for first == nil {
		it, body, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("read the snapshot: %v", err)
		}
		switch it.Name {
		case ItemFiles:
			if it.Kind != sdk.ItemTree || it.Tree == nil || it.Tree.Root == "" {
				return fail("item %s is not a tree restored by the host", it.Name)
			}
			staged = it.Tree.Root
		case ItemCertificates, ItemServerConfig:
			if archives[it.Name], err = readTar(body); err != nil {
				return fail("item %s: %v", it.Name, err)
			}
		default:
			if manifest == nil {
				return fail("item %s: the snapshot has no %s", it.Name, dump.MetaManifest)
			}
			first, firstBody = &it, body
		}
	}
	if staged == "" {
		return fail("the snapshot has no %s item", ItemFiles)
	}

	// The database connection: the live wp-config.php, or the restored
	// one when the site does not exist here yet.
	var s *site
	if p, ferr := FindWPConfig(st.root); ferr == nil {
		s, err = openSite(req.Instance, p)
	} else {
		p := filepath.Join(staged, filepath.FromSlash(st.rootRel()), wpConfigPHP)
		log.Info("the site has no wp-config.php here yet: using the snapshot's for the database connection", "wp_config", p)
		s, err = openSite(req.Instance, p)
	}
	if err != nil {
		return err
	}
	patterns, err := s.excludes(s.maintenance)
	if err != nil {
		return s.errorf("%v", err)
	}
	m, _ := pathmatch.New(patterns)

	filesDst := s.siteDir
	archiveBase := map[string]string{ItemCertificates: "/", ItemServerConfig: "/"}
	targetDB := s.dbName
	if !inPlace {
		filesDst = filepath.Join(req.Destination, destFiles)
		archiveBase[ItemCertificates] = filepath.Join(req.Destination, destCertificates)
		archiveBase[ItemServerConfig] = filepath.Join(req.Destination, destServerConfig)
		m = nil // the destination holds only what the snapshot has
	}
	if opts.database != "" {
		targetDB = opts.database
	}

	mi, err := mirror.Plan(staged, filesDst, m)
	if err != nil {
		return s.errorf("%v", err)
	}
	log.Info(dryRunPrefix(req.DryRun)+"files of "+filesDst+": "+mi.Summary(), "dry_run", req.DryRun)
	req.Note("%sfiles of %s: %s", dryRunPrefix(req.DryRun), filesDst, mi.Summary())
	names := make([]string, 0, len(archives))
	for name := range archives {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cnt, err := applyTar(archives[name], archiveBase[name], true)
		if err != nil {
			return s.errorf("%s: %v", name, err)
		}
		line := fmt.Sprintf("%s%s under %s: %d entries to write, %d unchanged", dryRunPrefix(req.DryRun), name, archiveBase[name], cnt.written, cnt.unchanged)
		log.Info(line, "dry_run", req.DryRun)
		req.Note("%s", line)
	}
	if !req.DryRun {
		if err := mi.Prepare(); err != nil {
			mi.Abort()
			return s.errorf("prepare the files of %s: %v", filesDst, err)
		}
		defer mi.Abort()
	}

	// Step 2.
	if inPlace && s.maintenance && !req.DryRun {
		if _, err := os.Stat(s.root); err == nil {
			leave, err := s.enterMaintenance()
			if err != nil {
				return err
			}
			defer func() {
				if lerr := leave(); lerr != nil && err == nil {
					err = lerr
				}
			}()
		}
	}

	// Step 3.
	if first != nil {
		pending := true
		next := func() (dump.Item, io.Reader, error) {
			if pending {
				pending = false
				return dump.Item{Name: first.Name, Meta: first.Meta}, firstBody, nil
			}
			it, body, err := r.Next()
			if err != nil {
				return dump.Item{}, nil, err
			}
			if it.Kind != sdk.ItemStream {
				return dump.Item{}, nil, fmt.Errorf("item %s after the database items: the snapshot's order is not a wordpress source's", it.Name)
			}
			return dump.Item{Name: it.Name, Meta: it.Meta}, body, nil
		}
		par := s.parallel
		if opts.parallel > 0 {
			par = opts.parallel
		}
		cfg := dump.LoadConfig{
			Conn: s.conn, Parallel: par, Manifest: manifest, DryRun: req.DryRun, Force: opts.force,
			Target: map[string]string{manifest.Databases[0].Name: targetDB}, Log: sdk.Logger(),
		}
		res, err := dump.Load(ctx, cfg, next)
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "runner_restore_") && strings.Contains(err.Error(), "Access denied") {
				hint = fmt.Sprintf("; the restore loads into staging databases runner_restore_*: GRANT ALL ON `runner\\_restore\\_%%`.* TO the user %q, or set dsn and password_file to an account that may create databases", s.conn.User)
			}
			return s.errorf("restore database %s: %v%s (the site's files were not changed)", targetDB, err, hint)
		}
		if req.DryRun {
			if err := sdk.DrainItems(r); err != nil {
				return s.errorf("%v", err)
			}
			req.Note("would restore database %s: %d tables (loaded into a staging database, verified, then swapped in)", targetDB, len(manifest.Tables))
		} else {
			log.Info("database restored", "database", targetDB, "tables", res.Tables, "rows", res.Rows, "checksums_verified", res.Verified)
			req.Note("restored database %s: %d tables, %d rows, checksums verified: %v", targetDB, res.Tables, res.Rows, res.Verified)
		}
		if inPlace {
			if err := s.dropStale(ctx, targetDB, manifest, req, log); err != nil {
				return err
			}
		}
	} else if err := sdk.DrainItems(r); err != nil {
		return s.errorf("%v", err)
	}
	if req.DryRun {
		return nil
	}

	// Step 4.
	left, err := mi.Commit()
	if err != nil {
		return s.errorf("the database was restored, but the files of %s only partly: %v (run the restore again)", filesDst, err)
	}
	for _, p := range left {
		log.Warn("directory not in the snapshot left in place: it holds excluded files", "path", p)
	}
	// Step 5.
	for _, name := range names {
		if _, err := applyTar(archives[name], archiveBase[name], false); err != nil {
			return s.errorf("the database and files were restored, but not all of %s: %v", name, err)
		}
	}
	return nil
}

func dryRunPrefix(dry bool) string {
	if dry {
		return "would restore "
	}
	return "restoring "
}

// dropStale drops the site's base tables in db that the snapshot does
// not have (tables a plugin created after the snapshot), choosing the
// site's tables by the capture's rule (scope).
func (s *site) dropStale(ctx context.Context, db string, m *dump.Manifest, req sdk.ApplyRequest, log interface {
	Info(string, ...any)
}) error {
	dryRun := req.DryRun
	c, err := connectDB(ctx, s.conn)
	if err != nil {
		return s.errorf("database %s: %v", db, err)
	}
	defer c.close()
	rows, err := c.rows("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + quoteString(db))
	if err != nil {
		return s.errorf("database %s: %v", db, err)
	}
	var all []string
	base := map[string]bool{}
	for _, r := range rows {
		all = append(all, r[0])
		base[r[0]] = r[1] == "BASE TABLE"
	}
	f, _ := scope(db, s.prefix, all)
	inSnapshot := map[string]bool{}
	for _, t := range m.Tables {
		inSnapshot[t.Name] = true
	}
	var stale []string
	for _, t := range all {
		if base[t] && f.Table(db, t) && !inSnapshot[t] && !strings.HasPrefix(t, "_runner_old_") {
			stale = append(stale, t)
		}
	}
	sort.Strings(stale)
	for _, t := range stale {
		if dryRun {
			log.Info("would drop a table the snapshot does not have", "database", db, "table", t)
			req.Note("would drop table %s.%s, which the snapshot does not have", db, t)
			continue
		}
		if _, err := c.c.Execute("DROP TABLE " + quoteIdent(db) + "." + quoteIdent(t)); err != nil {
			return s.errorf("drop table %s.%s, which the snapshot does not have: %v", db, t, err)
		}
		log.Info("dropped a table the snapshot does not have", "database", db, "table", t)
		req.Note("dropped table %s.%s, which the snapshot does not have", db, t)
	}
	return nil
}
