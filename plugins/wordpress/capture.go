package wordpress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/plugins/mysql/dump"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/policies"
)

// maintenanceFile is WordPress's maintenance marker in the root; its
// format is what WordPress writes during an update. WordPress ignores a
// marker older than ten minutes, so a runner killed before it could
// remove its marker leaves the site down for ten minutes at most.
const (
	maintenanceFile    = ".maintenance"
	maintenanceContent = "<?php $upgrading = time(); ?>\n"
)

// enterMaintenance writes root/.maintenance and returns the function that
// removes it. An existing marker (an update in progress, or the
// operator's) is left as it is and not removed afterwards.
func (s *site) enterMaintenance() (func() error, error) {
	p := filepath.Join(s.root, maintenanceFile)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return func() error { return nil }, nil
	}
	if err != nil {
		return nil, s.errorf("maintenance mode: %v", err)
	}
	_, err = f.WriteString(maintenanceContent)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	done := false
	leave := func() error {
		if done {
			return nil
		}
		done = true
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.errorf("leave maintenance mode: %v", err)
		}
		return nil
	}
	if err != nil {
		_ = leave()
		return nil, s.errorf("maintenance mode: %v", err)
	}
	return leave, nil
}

// wpVersion reads $wp_version from root/wp-includes/version.php.
var wpVersionRe = regexp.MustCompile(`(?m)^\s*\$wp_version\s*=\s*['"]([^'"]+)['"]`)

func wpVersion(root string) (string, error) {
	p := filepath.Join(root, "wp-includes", "version.php")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("%s does not exist: not a WordPress root", p)
		}
		return "", err
	}
	m := wpVersionRe.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no $wp_version", p)
	}
	return string(m[1]), nil
}

// dbPlan is what the source found in the site's database.
type dbPlan struct {
	filter         dump.Filter
	shared         bool
	siteURL, home  string
	optionsMissing bool
	tables, dumped int
}

// inspectDB connects with the site's credentials, decides what of the
// database is the site's, and reads siteurl and home.
func (s *site) inspectDB(ctx context.Context) (*dbPlan, error) {
	c, err := connectDB(ctx, s.conn)
	if err != nil {
		return nil, s.errorf("database %s: %v", s.dbName, err)
	}
	defer c.close()
	tables, err := c.tablesOf(s.dbName)
	if err != nil {
		return nil, s.errorf("list the tables of database %s: %v", s.dbName, err)
	}
	rows, err := c.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " + quoteString(s.dbName))
	if err != nil {
		return nil, s.errorf("database %s: %v", s.dbName, err)
	}
	if len(rows) == 0 {
		return nil, s.errorf("database %s (DB_NAME in %s) does not exist on %s, or user %q may not see it", s.dbName, s.cfg.Path, s.conn.Addr, s.conn.User)
	}
	p := &dbPlan{tables: len(tables)}
	p.filter, p.shared = scope(s.dbName, s.prefix, tables)
	for _, t := range tables {
		if p.filter.Table(s.dbName, t) {
			p.dumped++
		}
	}
	if p.dumped == 0 {
		return nil, s.errorf("database %s holds no tables with the prefix %q ($table_prefix in %s): is WordPress installed?", s.dbName, s.prefix, s.cfg.Path)
	}
	if !containsString(tables, s.prefix+"options") {
		p.optionsMissing = true
		return p, nil
	}
	if p.siteURL, err = c.option(s.dbName, s.prefix, "siteurl"); err != nil {
		return nil, s.errorf("read siteurl: %v", err)
	}
	if p.home, err = c.option(s.dbName, s.prefix, "home"); err != nil {
		return nil, s.errorf("read home: %v", err)
	}
	return p, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PlanCapture estimates, read-only, what a capture would hold: the
// site's files (walked with the excludes), its tables (information_schema
// estimates, through the site's own database account) and the
// certificates and configuration files.
func (*Source) PlanCapture(ctx context.Context, inst sdk.Instance) (*sdk.CapturePlan, error) {
	s, err := openSite(inst, "")
	if err != nil {
		return nil, err
	}
	patterns, err := s.excludes(s.maintenance)
	if err != nil {
		return nil, s.errorf("%v", err)
	}
	m, _ := pathmatch.New(patterns)
	plan := &sdk.CapturePlan{}
	files, bytes, err := countTree(ctx, s.siteDir, m)
	if err != nil {
		return nil, s.errorf("%v", err)
	}
	plan.Items = append(plan.Items, sdk.ItemEstimate{Name: ItemFiles, Kind: sdk.ItemTree, Files: files, Bytes: bytes, Detail: s.siteDir})
	for _, a := range []struct {
		name  string
		paths []string
	}{{ItemCertificates, s.certificates}, {ItemServerConfig, s.serverConfig}} {
		if len(a.paths) == 0 {
			continue
		}
		entries, err := collect(a.paths)
		if err != nil {
			return nil, s.errorf("%s: %v", a.name, err)
		}
		var n, size int64
		for _, e := range entries {
			if e.info.Mode().IsRegular() {
				n++
				size += e.info.Size()
			}
		}
		plan.Items = append(plan.Items, sdk.ItemEstimate{Name: a.name, Kind: sdk.ItemStream, Files: n, Bytes: size, Detail: fmt.Sprintf("tar of %d entries", len(entries))})
	}
	dp, err := s.inspectDB(ctx)
	if err != nil {
		return nil, err
	}
	tables, err := dump.Estimate(ctx, s.conn, dp.filter)
	if err != nil {
		return nil, s.errorf("database %s: %v", s.dbName, err)
	}
	var rows, dbBytes int64
	for _, t := range tables {
		plan.Items = append(plan.Items, sdk.ItemEstimate{Name: dump.ItemName(t.Database, t.Table), Kind: sdk.ItemStream, Bytes: t.Bytes, Detail: fmt.Sprintf("~%d rows, %s", t.Rows, t.Engine)})
		rows += t.Rows
		dbBytes += t.Bytes
	}
	what := "database " + s.dbName
	if dp.shared {
		what = fmt.Sprintf("the %q tables of the shared database %s", s.prefix, s.dbName)
	}
	plan.Notes = append(plan.Notes, fmt.Sprintf("WordPress site %s: %s, %d tables, ~%d rows, ~%s (estimates) on %s", s.root, what, len(tables), rows, policies.FormatSize(dbBytes), s.conn.Addr))
	if s.maintenance {
		plan.Notes = append(plan.Notes, "the site will be in maintenance mode while its database and files are captured")
	}
	return plan, nil
}

// countTree counts the regular files and bytes under root after excludes.
func countTree(ctx context.Context, root string, m *pathmatch.Matcher) (files, bytes int64, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if m.Match(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files++
			if fi, err := d.Info(); err == nil {
				bytes += fi.Size()
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("%s does not exist", root)
	}
	return files, bytes, err
}

// Capture produces, in this order: the certificates and server_config
// tar archives, the site's files (a tree item of site_dir) and the
// database items (package dump's DB/TABLE...). The order is what makes
// restores safe: everything else is staged before the database swap
// (see Apply). With maintenance = true the site is in maintenance mode
// from just before the files until the dump has ended; the host reads
// the tree during the Tree call, so both are covered.
//
// Everything that can fail early is checked first, before maintenance
// mode: wp-config.php, the certificate and configuration paths, and the
// database connection.
func (*Source) Capture(ctx context.Context, inst sdk.Instance, w sdk.CaptureWriter) (err error) {
	s, err := openSite(inst, "")
	if err != nil {
		return err
	}
	patterns, err := s.excludes(s.maintenance)
	if err != nil {
		return s.errorf("%v", err)
	}
	version, err := wpVersion(s.root)
	if err != nil {
		return s.errorf("%v", err)
	}
	if fi, err := os.Stat(s.siteDir); err != nil || !fi.IsDir() {
		return s.errorf("site_dir %s is not a directory", s.siteDir)
	}
	var certs, confs []entry
	var warnings, warn []string
	if len(s.certificates) > 0 {
		if certs, warn, err = collectWarn(s.certificates); err != nil {
			return s.errorf("certificates: %v", err)
		}
		warnings = append(warnings, warn...)
	}
	if len(s.serverConfig) > 0 {
		if confs, warn, err = collectWarn(s.serverConfig); err != nil {
			return s.errorf("server_config: %v", err)
		}
		warnings = append(warnings, warn...)
	}
	dp, err := s.inspectDB(ctx)
	if err != nil {
		return err
	}
	for _, a := range []struct {
		name    string
		entries []entry
	}{{ItemCertificates, certs}, {ItemServerConfig, confs}} {
		if a.entries == nil {
			continue
		}
		sw, err := w.Stream(sdk.Item{Name: a.name, Kind: sdk.ItemStream})
		if err != nil {
			return s.errorf("item %s: %v", a.name, err)
		}
		if err := writeTar(sw, a.entries); err != nil {
			_ = sw.CloseWithError(err)
			return s.errorf("%s: %v", a.name, err)
		}
		if err := sw.Close(); err != nil {
			return s.errorf("item %s: %v", a.name, err)
		}
	}

	leave := func() error { return nil }
	if s.maintenance {
		if leave, err = s.enterMaintenance(); err != nil {
			return err
		}
		defer func() {
			if lerr := leave(); lerr != nil && err == nil {
				err = lerr
			}
		}()
	}
	item := sdk.Item{Name: ItemFiles, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: s.siteDir, Excludes: patterns}}
	if err := w.Tree(item); err != nil {
		return s.errorf("files of %s: %v", s.siteDir, err)
	}
	res, err := dump.Dump(ctx, dump.Config{Conn: s.conn, Filter: dp.filter, Parallel: s.parallel, Log: sdk.Logger()}, func(it dump.Item) (dump.ItemWriter, error) {
		return w.Stream(sdk.Item{Name: it.Name, Kind: sdk.ItemStream, Meta: it.Meta})
	})
	if err != nil {
		return s.errorf("dump database %s: %v", s.dbName, err)
	}
	if err := leave(); err != nil {
		return err
	}
	meta := res.Manifest.Meta(res.NonTransactional)
	meta[MetaVersion] = version
	meta[MetaSiteURL] = dp.siteURL
	meta[MetaHome] = dp.home
	meta[MetaRoot] = s.root
	meta[MetaSiteDir] = s.siteDir
	meta[MetaDBName] = s.dbName
	meta[MetaTablePrefix] = s.prefix
	meta[MetaDBScope] = "database"
	if dp.shared {
		meta[MetaDBScope] = "prefix"
	}
	summary := "WordPress " + version
	if dp.siteURL != "" {
		summary += ", " + dp.siteURL
	}
	meta[sdk.MetaSummary] = summary + ", " + res.Manifest.Summary()
	for k, paths := range map[string][]string{MetaCertificates: s.certificates, MetaServerConfig: s.serverConfig} {
		if len(paths) > 0 {
			b, _ := json.Marshal(paths)
			meta[k] = string(b)
		}
	}
	if dp.optionsMissing {
		warnings = append(warnings, fmt.Sprintf("%s: no table %s: siteurl and home not recorded", s.root, s.prefix+"options"))
	}
	warnings = append(warnings, res.Warnings...)
	if err := w.Done(sdk.CaptureResult{Meta: meta, Warnings: warnings}); err != nil {
		return s.errorf("%v", err)
	}
	return nil
}
