package wordpress_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/internal/pathmatch"
	"github.com/backup-runner/runner/internal/wptest"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
	"github.com/backup-runner/runner/plugins/wordpress"
)

// One MariaDB server for this package's tests.
var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	if _, _, err := wptest.Fetch(); err != nil {
		fmt.Fprintln(os.Stderr, "wptest:", err)
		os.Exit(1)
	}
	mariadbtest.Main(m, &srv)
}

func source(t *testing.T) *rpc.SourceClient {
	t.Helper()
	c := sdktest.Start(t, wordpress.Plugin())
	s, err := c.Source(context.Background(), wordpress.TypeName)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func instance(t testing.TB, s *rpc.SourceClient, attrs map[string]cty.Value) sdk.Instance {
	t.Helper()
	v, err := config.Build(s.Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Instance{TypeName: wordpress.TypeName, Address: `source.wordpress.site["blog"]`, Config: v}
}

func strs(ss ...string) cty.Value {
	var vs []cty.Value
	for _, s := range ss {
		vs = append(vs, cty.StringVal(s))
	}
	return cty.ListVal(vs)
}

// host is a CaptureWriter that does what the runner's host does with the
// items: a tree is read during the Tree call (here: copied, with its
// metadata and excludes, into a staging directory, as a restore would
// recreate it), streams are kept in memory.
type host struct {
	t       *testing.T
	mu      sync.Mutex
	staging string
	items   []sdk.Item
	bodies  [][]byte
	result  *sdk.CaptureResult
	onTree  func(sdk.Item) error
}

type memStream struct {
	h   *host
	i   int
	buf bytes.Buffer
}

func (m *memStream) Write(p []byte) (int, error) { return m.buf.Write(p) }
func (m *memStream) Close() error {
	m.h.mu.Lock()
	m.h.bodies[m.i] = m.buf.Bytes()
	m.h.mu.Unlock()
	return nil
}
func (m *memStream) CloseWithError(error) error { return nil }

func (h *host) Tree(it sdk.Item) error {
	if h.onTree != nil {
		if err := h.onTree(it); err != nil {
			return err
		}
	}
	m, err := pathmatch.New(it.Tree.Excludes)
	if err != nil {
		return err
	}
	h.staging = filepath.Join(h.t.TempDir(), "staged")
	if err := copyTree(it.Tree.Root, h.staging, m); err != nil {
		return err
	}
	h.items = append(h.items, it)
	h.bodies = append(h.bodies, nil)
	return nil
}

func (h *host) Stream(it sdk.Item) (sdk.StreamWriter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.items = append(h.items, it)
	h.bodies = append(h.bodies, nil)
	return &memStream{h: h, i: len(h.items) - 1}, nil
}

func (h *host) Done(r sdk.CaptureResult) error { h.result = &r; return nil }

func (h *host) names() []string {
	var out []string
	for _, it := range h.items {
		out = append(out, it.Name)
	}
	return out
}

// reader replays the snapshot as the host does for an apply: item meta
// is dropped (the repository does not keep it), the tree comes as a
// staging directory.
func (h *host) reader() sdk.ItemReader { return &replay{h: h} }

type replay struct {
	h *host
	i int
}

func (r *replay) Next() (sdk.Item, io.Reader, error) {
	if r.i >= len(r.h.items) {
		return sdk.Item{}, nil, io.EOF
	}
	it := r.h.items[r.i]
	body := r.h.bodies[r.i]
	r.i++
	it.Meta = nil
	if it.Kind == sdk.ItemTree {
		return sdk.Item{Name: it.Name, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: r.h.staging}}, nil, nil
	}
	return it, bytes.NewReader(body), nil
}

// copyTree copies src to dst with modes, owners and times, leaving out
// what m excludes.
func copyTree(src, dst string, m *pathmatch.Matcher) error {
	type dirTime struct {
		path string
		fi   fs.FileInfo
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && m.Match(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, fi.Mode().Perm()); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, fi})
			return os.Chmod(target, fi.Mode().Perm())
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(target, fi.Mode().Perm()); err != nil {
				return err
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].path, dirs[i].fi.ModTime(), dirs[i].fi.ModTime())
	}
	return err
}

// digest describes a tree: every entry's type, mode, size, time and
// content hash (or link target), for exact comparisons. Directory times
// are left out when noDirTimes.
func digest(t *testing.T, root string, m *pathmatch.Matcher, noDirTimes bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && m != nil && m.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v", fi.Mode())
		switch {
		case fi.IsDir():
			if !noDirTimes {
				desc += " " + fi.ModTime().UTC().String()
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" %d %s %s", fi.Size(), fi.ModTime().UTC(), hex.EncodeToString(sum[:8]))
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffDigests(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s: %q != %q", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+": extra")
		}
	}
	sort.Strings(out)
	return out
}

func waitGone(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(p)
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there: %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCaptureAndRestoreASite captures a real WordPress site (vhost
// directory with SITE/ and logs, certificates with Let's Encrypt's
// symlinks, a web-server config), changes it, and restores it in place
// and beside itself.
func TestCaptureAndRestoreASite(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	vhost := filepath.Join(base, "vhosts", "blog")
	site := wptest.NewSite(t, wptest.Options{Root: filepath.Join(vhost, "SITE"), Server: srv, URL: "https://blog.example.org"})
	mustWrite(t, filepath.Join(vhost, "logs", "access.log"), "GET /\n", 0o640)
	mustWrite(t, filepath.Join(site.Root, "wp-content/cache/page.html"), "cached", 0o644)
	mustWrite(t, filepath.Join(site.Root, "wp-content/uploads/2026/01/photo.jpg"), "jpeg", 0o644)
	le := filepath.Join(base, "etc", "letsencrypt")
	mustWrite(t, filepath.Join(le, "archive/blog/cert1.pem"), "CERT1", 0o644)
	mustWrite(t, filepath.Join(le, "archive/blog/privkey1.pem"), "KEY1", 0o600)
	mustSymlink(t, "../../archive/blog/cert1.pem", filepath.Join(le, "live/blog/cert.pem"))
	mustSymlink(t, "../../archive/blog/privkey1.pem", filepath.Join(le, "live/blog/privkey.pem"))
	nginx := filepath.Join(base, "etc", "nginx", "sites-available", "blog")
	mustWrite(t, nginx, "server { server_name blog.example.org; }\n", 0o644)

	src := source(t)
	inst := instance(t, src, map[string]cty.Value{
		"root":          cty.StringVal(site.Root),
		"site_dir":      cty.StringVal(vhost),
		"certificates":  strs(filepath.Join(le, "live/blog")),
		"server_config": strs(nginx),
		"maintenance":   cty.True,
	})
	if diags := (&wordpress.Source{}).Validate(ctx, inst.Config); diags.HasErrors() {
		t.Fatal(diags)
	}

	plan, err := src.PlanCapture(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Items[0].Name != wordpress.ItemFiles || plan.Items[0].Files < 1000 || len(plan.Items) < 12 {
		t.Fatalf("plan: %+v", plan.Items[:3])
	}

	// A capture that fails (the host cannot read the tree) leaves no
	// maintenance file behind.
	failing := &host{t: t, onTree: func(sdk.Item) error { return errors.New("disk on fire") }}
	if err := src.Capture(ctx, inst, failing); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("failing capture: %v", err)
	}
	// The host returns at once; the plugin ends its capture when it sees
	// the call cancelled.
	waitGone(t, filepath.Join(site.Root, ".maintenance"))

	h := &host{t: t}
	sawMaintenance := ""
	h.onTree = func(it sdk.Item) error {
		b, err := os.ReadFile(filepath.Join(site.Root, ".maintenance"))
		sawMaintenance = string(b)
		return err
	}
	if err := src.Capture(ctx, inst, h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sawMaintenance, "$upgrading = time();") {
		t.Fatalf("maintenance during the capture: %q", sawMaintenance)
	}
	if _, err := os.Stat(filepath.Join(site.Root, ".maintenance")); !os.IsNotExist(err) {
		t.Fatalf("maintenance file after the capture: %v", err)
	}
	names := h.names()
	if len(names) < 15 || names[0] != "certificates" || names[1] != "server_config" || names[2] != "files" || names[3] != site.Database+"/wp_commentmeta" {
		t.Fatalf("items: %v", names)
	}
	meta := h.result.Meta
	for k, want := range map[string]string{
		"wordpress.version": site.Version, "wordpress.siteurl": "https://blog.example.org", "wordpress.home": "https://blog.example.org",
		"wordpress.root": site.Root, "wordpress.db_name": site.Database, "wordpress.table_prefix": "wp_", "wordpress.db_scope": "database",
		"mysql.databases": site.Database,
	} {
		if meta[k] != want {
			t.Errorf("meta %s = %q, want %q", k, meta[k], want)
		}
	}
	if meta["mysql.binlog_file"] == "" || meta["mysql.binlog_pos"] == "" || meta["mysql.manifest"] == "" {
		t.Errorf("no binlog position in %v", meta)
	}
	if want := "WordPress " + site.Version + ", https://blog.example.org, "; !strings.HasPrefix(meta["summary"], want) || !strings.Contains(meta["summary"], "binlog "+meta["mysql.binlog_file"]+":") {
		t.Errorf("summary %q, want %q... with the binlog position", meta["summary"], want)
	}
	// The staged tree lacks the excluded cache and the maintenance file.
	if _, err := os.Stat(filepath.Join(h.staging, "SITE/wp-content/cache")); !os.IsNotExist(err) {
		t.Fatalf("cache captured: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.staging, "logs/access.log")); err != nil {
		t.Fatalf("site_dir not captured whole: %v", err)
	}

	excl, _ := pathmatch.New([]string{"/SITE/wp-content/cache/", "/SITE/.maintenance"})
	before := digest(t, vhost, excl, true)
	if d := diffDigests(digest(t, h.staging, nil, true), before); len(d) > 0 {
		t.Fatalf("staged tree differs from the site: %v", d)
	}
	postBefore := site.Post(t, 1)

	// Someone changes the site.
	mustWrite(t, filepath.Join(site.Root, "index.php"), "<?php echo 'hacked';\n", 0o644)
	mustWrite(t, filepath.Join(site.Root, "wp-content/uploads/new.jpg"), "new", 0o644)
	if err := os.Remove(filepath.Join(site.Root, "readme.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(site.Root, "wp-content/uploads/2026")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(site.Root, "wp-login.php"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(site.Root, "wp-content/cache/page.html"), "newer cache", 0o644)
	site.SetPost(t, 1, "changed post")
	site.Exec(t, "CREATE TABLE wp_stale (id INT PRIMARY KEY)")
	mustWrite(t, filepath.Join(le, "archive/blog/cert1.pem"), "BROKEN", 0o644)
	if err := os.Remove(filepath.Join(le, "live/blog/privkey.pem")); err != nil {
		t.Fatal(err)
	}
	changed := digest(t, vhost, excl, true)

	t.Run("dry run changes nothing", func(t *testing.T) {
		req := sdk.ApplyRequest{Instance: inst, SnapshotMeta: meta, DryRun: true, Options: map[string]string{"force": "true"}}
		if err := src.Apply(ctx, req, h.reader()); err != nil {
			t.Fatal(err)
		}
		if d := diffDigests(changed, digest(t, vhost, excl, true)); len(d) > 0 {
			t.Fatalf("dry run changed files: %v", d)
		}
		if site.Post(t, 1) != "changed post" {
			t.Fatal("dry run changed the database")
		}
	})

	t.Run("beside the live site", func(t *testing.T) {
		dest := t.TempDir()
		req := sdk.ApplyRequest{Instance: inst, SnapshotMeta: meta, Destination: dest}
		if err := src.Apply(ctx, req, h.reader()); err == nil || !strings.Contains(err.Error(), "database") {
			t.Fatalf("without a database: %v", err)
		}
		// The operator lets the site's user create the inspection copy.
		site.Exec(t, "GRANT ALL PRIVILEGES ON `blog_copy`.* TO '"+site.User+"'@'%'")
		req.Options = map[string]string{"database": "blog_copy"}
		if err := src.Apply(ctx, req, h.reader()); err != nil {
			t.Fatal(err)
		}
		if d := diffDigests(before, digest(t, filepath.Join(dest, "files"), nil, true)); len(d) > 0 {
			t.Fatalf("restored files differ: %v", d)
		}
		if got := readFile(t, filepath.Join(dest, "certificates", le, "live/blog/privkey.pem")); got != "KEY1" {
			t.Fatalf("certificate: %q", got)
		}
		if l, err := os.Readlink(filepath.Join(dest, "certificates", le, "live/blog/cert.pem")); err != nil || l != "../../archive/blog/cert1.pem" {
			t.Fatalf("certificate link: %q %v", l, err)
		}
		if got := readFile(t, filepath.Join(dest, "server_config", nginx)); !strings.Contains(got, "server_name") {
			t.Fatalf("server config: %q", got)
		}
		rows := site.Query(t, "SELECT post_content FROM blog_copy.wp_posts WHERE ID = 1")
		if len(rows) != 1 || rows[0][0] != postBefore {
			t.Fatalf("restored post: %v", rows)
		}
		if site.Post(t, 1) != "changed post" {
			t.Fatal("the live database was touched")
		}
		if d := diffDigests(changed, digest(t, vhost, excl, true)); len(d) > 0 {
			t.Fatalf("the live files were touched: %v", d)
		}
	})

	t.Run("into place", func(t *testing.T) {
		req := sdk.ApplyRequest{Instance: inst, SnapshotMeta: meta, Options: map[string]string{"force": "true"}}
		if err := src.Apply(ctx, req, h.reader()); err != nil {
			t.Fatal(err)
		}
		if d := diffDigests(before, digest(t, vhost, excl, true)); len(d) > 0 {
			t.Fatalf("restored site differs: %v", d)
		}
		if got := readFile(t, filepath.Join(site.Root, "wp-content/cache/page.html")); got != "newer cache" {
			t.Fatalf("excluded cache touched: %q", got)
		}
		if got := site.Post(t, 1); got != postBefore {
			t.Fatalf("post: %q", got)
		}
		if n := site.Query(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'wp_stale'"); n[0][0] != "0" {
			t.Fatal("a table the snapshot does not have survived")
		}
		if got := readFile(t, filepath.Join(le, "live/blog/cert.pem")); got != "CERT1" {
			t.Fatalf("certificate: %q", got)
		}
		if fi, err := os.Lstat(filepath.Join(le, "live/blog/privkey.pem")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("privkey link: %v %v", fi, err)
		}
		if fi, err := os.Stat(filepath.Join(le, "archive/blog/privkey1.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("privkey mode: %v %v", fi, err)
		}
		if _, err := os.Stat(filepath.Join(site.Root, ".maintenance")); !os.IsNotExist(err) {
			t.Fatalf("maintenance file after the restore: %v", err)
		}
		if entries, _ := filepath.Glob(filepath.Join(vhost, "..", ".runner-restore-*")); len(entries) > 0 {
			t.Fatalf("work directory left: %v", entries)
		}
		// Applying again changes nothing.
		if err := src.Apply(ctx, req, h.reader()); err != nil {
			t.Fatal(err)
		}
		if d := diffDigests(before, digest(t, vhost, excl, true)); len(d) > 0 {
			t.Fatalf("second restore: %v", d)
		}
	})
}

// TestSharedDatabaseCapturesOnlyTheSitesPrefix puts two sites into one
// database, with prefixes wp_ and wp_shop_ (one a prefix of the other).
func TestSharedDatabaseCapturesOnlyTheSitesPrefix(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	a := wptest.NewSite(t, wptest.Options{Root: filepath.Join(base, "a"), Server: srv, Database: "shared", User: "shared", Password: "pw", Prefix: "wp_"})
	b := wptest.NewSite(t, wptest.Options{Root: filepath.Join(base, "b"), Server: srv, Database: "shared", User: "shared", Password: "pw", Prefix: "wp_shop_", URL: "http://shop.example.org"})
	src := source(t)
	for _, tc := range []struct {
		site        *wptest.Site
		want, other string
	}{{a, "shared/wp_", "shared/wp_shop_"}, {b, "shared/wp_shop_", ""}} {
		h := &host{t: t}
		if err := src.Capture(ctx, instance(t, src, map[string]cty.Value{"root": cty.StringVal(tc.site.Root)}), h); err != nil {
			t.Fatal(err)
		}
		tables := 0
		for _, n := range h.names() {
			if !strings.Contains(n, "/") {
				continue
			}
			tables++
			if !strings.HasPrefix(n, tc.want) || (tc.other != "" && strings.HasPrefix(n, tc.other)) {
				t.Errorf("%s: item %s", tc.site.Prefix, n)
			}
		}
		if tables != 12 {
			t.Errorf("%s: %d tables: %v", tc.site.Prefix, tables, h.names())
		}
		if h.result.Meta["wordpress.db_scope"] != "prefix" || h.result.Meta["wordpress.siteurl"] != tc.site.URL {
			t.Errorf("%s: meta %v", tc.site.Prefix, h.result.Meta)
		}
	}
}

// TestErrorsNameTheSiteAndTheCause: an unreadable wp-config.php, an
// unreachable database and a missing certificate path.
func TestErrorsNameTheSiteAndTheCause(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	root := filepath.Join(t.TempDir(), "SITE")
	fakeWordPress(t, root)
	cfg := func(host, pass string) {
		mustWrite(t, filepath.Join(root, "wp-config.php"), "<?php\n/** db */\ndefine('DB_NAME', 'blog');\ndefine('DB_USER', 'blog');\ndefine('DB_PASSWORD', "+pass+");\ndefine('DB_HOST', '"+host+"');\n$table_prefix = 'wp_';\n", 0o640)
	}
	capture := func(attrs map[string]cty.Value) error {
		attrs["root"] = cty.StringVal(root)
		return src.Capture(ctx, instance(t, src, attrs), &host{t: t})
	}
	// A closed port: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()

	cfg(closed, "getenv('WP_PASSWORD')")
	err = capture(map[string]cty.Value{})
	for _, want := range []string{`source wordpress "site"["blog"]`, root, "wp-config.php line 5", "DB_PASSWORD", "password_file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unreadable wp-config: %v (want %q)", err, want)
		}
	}

	cfg(closed, "'secret'")
	err = capture(map[string]cty.Value{})
	for _, want := range []string{root, "cannot reach MySQL server at " + closed} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("unreachable database: %v (want %q)", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the password in an error: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "live", "blog")
	err = capture(map[string]cty.Value{"certificates": strs(missing)})
	for _, want := range []string{root, "certificates", missing + " does not exist"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("missing certificates: %v (want %q)", err, want)
		}
	}

	if err := os.Remove(filepath.Join(root, "wp-config.php")); err != nil {
		t.Fatal(err)
	}
	if err := capture(map[string]cty.Value{}); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "wp-config.php")+" does not exist") {
		t.Fatalf("no wp-config.php: %v", err)
	}
}

func TestValidateChecksWithoutReading(t *testing.T) {
	s := &wordpress.Source{}
	v := config.MustBuild(s.Schema(), map[string]cty.Value{
		"root":         cty.StringVal("relative"),
		"site_dir":     cty.StringVal("/elsewhere"),
		"certificates": strs("etc/letsencrypt"),
		"dsn":          cty.StringVal("u:pw@tcp(h:1)/"),
		"parallel":     cty.NumberIntVal(0),
	})
	diags := s.Validate(context.Background(), v)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{"root must be an absolute path", "not an absolute path", "dsn must not hold a password", "parallel must be between"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	v = config.MustBuild(s.Schema(), map[string]cty.Value{"root": cty.StringVal("/srv/www/blog/SITE"), "site_dir": cty.StringVal("/srv/www/other")})
	if d := s.Validate(context.Background(), v); !d.HasErrors() || !strings.Contains(d[0].Summary, "above it") {
		t.Errorf("site_dir not above root: %v", d)
	}
	v = config.MustBuild(s.Schema(), map[string]cty.Value{"root": cty.StringVal("/does/not/exist"), "site_dir": cty.StringVal("/does/not")})
	if d := s.Validate(context.Background(), v); d.HasErrors() {
		t.Errorf("Validate read the disk: %v", d)
	}
}
