package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/internal/wptest"
)

// wpServer is one simulated web server: its vhosts directory, its MariaDB,
// its runner state and configuration.
type wpServer struct {
	name   string
	vhosts string
	db     *mariadbtest.Server
	dir    string // configuration
	site   *wptest.Site
}

// wpConfig is the configuration every server shares (in git, in real
// life); variables say what differs per server.
const wpConfig = `
variable "vhosts" {}
variable "db_socket" {}
variable "nas" {}
variable "state" {}

runner {
  state_dir = var.state
}

target "nas" "shared" {
  path = var.nas
}

source "wordpress" "site" {
  for_each  = wordpress_sites(var.vhosts)
  root      = each.value
  site_dir  = "${var.vhosts}/${each.key}"
  db_socket = var.db_socket
}

policy "nightly" {
  schedule   = "daily 03:00"
  catch_up   = "1d"
  keep_daily = 60
}

job "site" {
  for_each = source.wordpress.site
  source   = each.value
  target   = target.nas.shared
  policy   = policy.nightly
  role     = wordpress_primary("${var.vhosts}/${each.key}") == hostname() ? "primary" : "replica"
}
`

func newWPServer(t *testing.T, name, nas string) *wpServer {
	t.Helper()
	s := &wpServer{name: name, vhosts: filepath.Join(t.TempDir(), "vhosts"), db: mariadbtest.Start(t)}
	state := filepath.Join(t.TempDir(), "state")
	s.dir = writeConfig(t, map[string]string{"main.hcl": wpConfig})
	vars := fmt.Sprintf("vhosts = %q\ndb_socket = %q\nnas = %q\nstate = %q\n", s.vhosts, s.db.Socket, nas, state)
	if err := os.WriteFile(filepath.Join(s.dir, "server.vars"), []byte(vars), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// addSite creates the blog site on this server: WordPress files under
// vhosts/blog/SITE and its database, with DB_HOST localhost (the server's
// own socket), the same database name and account on every server.
func (s *wpServer) addSite(t *testing.T, primary string) {
	t.Helper()
	root := filepath.Join(s.vhosts, "blog", "SITE")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s.site = wptest.NewSite(t, wptest.Options{Root: root, Server: s.db, Database: "blog", User: "blog", Password: "blog-secret", URL: "https://blog.example.org"})
	if err := s.site.WriteConfig("localhost"); err != nil {
		t.Fatal(err)
	}
	s.setPrimary(t, primary)
}

// setPrimary writes the marker file naming the primary.
func (s *wpServer) setPrimary(t *testing.T, host string) {
	t.Helper()
	dir := filepath.Join(s.vhosts, "blog")
	old, _ := filepath.Glob(filepath.Join(dir, "PRIMARY_IS_*"))
	for _, o := range old {
		_ = os.Remove(o)
	}
	if err := os.WriteFile(filepath.Join(dir, "PRIMARY_IS_"+host), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs runner on this server at a simulated time.
func (s *wpServer) run(t *testing.T, now time.Time, args ...string) result {
	t.Helper()
	env := []string{"RUNNER_HOSTNAME=" + s.name, "RUNNER_NOW=" + now.Format(time.RFC3339), "TZ=UTC"}
	return runner(t, env, append([]string{"-C", s.dir, "-var-file", filepath.Join(s.dir, "server.vars")}, args...)...)
}

// apply runs apply -json and returns the blog job's result.
func (s *wpServer) apply(t *testing.T, now time.Time, extra ...string) (result, map[string]any) {
	t.Helper()
	r := s.run(t, now, append([]string{"-json", "apply"}, extra...)...)
	var out struct{ Jobs []map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Jobs) != 1 {
		t.Fatalf("%s at %s: apply: %v\n%s", s.name, now, err, r)
	}
	return r, out.Jobs[0]
}

func (s *wpServer) file(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.vhosts, "blog", rel))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func (s *wpServer) writeFile(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(s.vhosts, "blog", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two web servers share a NAS. Server A is the blog's primary and backs it
// up nightly; B holds a replica that applies each night's snapshot. The
// site moves to B and back, with posts written on each side before each
// switch; none is lost. An edited replica refuses to be overwritten until
// forced. A recovery to 40 days ago brings back the files and rows of then,
// and its safety snapshot undoes it exactly.
func TestWordPressPrimaryReplicaAndRecovery(t *testing.T) {
	nas := t.TempDir()
	a, b := newWPServer(t, "web-a", nas), newWPServer(t, "web-b", nas)
	a.addSite(t, "web-a")
	b.addSite(t, "web-a") // the replica's copy, to be replaced by A's
	if r := a.run(t, time.Now(), "init", "target.nas.shared"); r.code != 0 {
		t.Fatalf("init: %s", r)
	}

	day := func(n int) time.Time { return time.Date(2026, 1, 1, 3, 10, 0, 0, time.UTC).AddDate(0, 0, n) }
	const job = `site["blog"]`
	// Days 1-42: A writes the day's post and a daily file, backs up; B applies.
	for n := 1; n <= 42; n++ {
		a.site.SetPost(t, 1, fmt.Sprintf("post of day %d", n))
		a.writeFile(t, "SITE/wp-content/uploads/day.txt", fmt.Sprintf("day %d", n))
		if n == 2 {
			a.writeFile(t, "SITE/wp-content/uploads/only-day-2.txt", "from day 2")
		}
		if n == 3 {
			_ = os.Remove(filepath.Join(a.vhosts, "blog", "SITE/wp-content/uploads/only-day-2.txt"))
		}
		if r, res := a.apply(t, day(n)); r.code != 0 || res["status"] != "success" {
			t.Fatalf("day %d on A: %s", n, r)
		}
		if n == 1 || n%10 == 0 || n == 42 {
			if r, res := b.apply(t, day(n).Add(10*time.Minute)); r.code != 0 || res["status"] != "success" {
				t.Fatalf("day %d on B: %s", n, r)
			}
			if got := b.site.Post(t, 1); got != fmt.Sprintf("post of day %d", n) {
				t.Fatalf("day %d: the replica has post %q", n, got)
			}
			if got := b.file(t, "SITE/wp-content/uploads/day.txt"); got != fmt.Sprintf("day %d", n) {
				t.Fatalf("day %d: the replica has day.txt %q", n, got)
			}
		}
	}
	// runner snapshots shows what each snapshot holds.
	r := a.run(t, day(42), "snapshots", job)
	mustContain(t, r, "CONTENT", "WordPress "+a.site.Version+", https://blog.example.org, 12 tables of blog, binlog ")
	// B is current: a second apply the same night does nothing.
	if _, res := b.apply(t, day(42).Add(20*time.Minute), "-force"); res["status"] != "skipped" || !strings.Contains(fmt.Sprint(res["reason"]), "replica is current") {
		t.Fatalf("B when current: %v", res)
	}

	// Someone edits the replica: the next apply refuses, naming the table.
	b.site.SetPost(t, 2, "edited on the replica")
	a.site.SetPost(t, 1, "post of day 43")
	if r, _ := a.apply(t, day(43)); r.code != 0 {
		t.Fatalf("day 43 on A: %s", r)
	}
	r, res := b.apply(t, day(43).Add(10*time.Minute))
	if r.code != 3 || !strings.Contains(fmt.Sprint(res["error"]), "changed since it applied snapshot") || !strings.Contains(fmt.Sprint(res["error"]), "blog/wp_posts") {
		t.Fatalf("apply over an edited replica: %s", r)
	}
	if got := b.site.Post(t, 2); got != "edited on the replica" {
		t.Fatalf("a refused apply changed the replica: %q", got)
	}
	if r, res := b.apply(t, day(43).Add(20*time.Minute), "-force"); r.code != 0 || res["status"] != "success" {
		t.Fatalf("forced apply: %s", r)
	}
	if got := b.site.Post(t, 1); got != "post of day 43" {
		t.Fatalf("after the forced apply the replica has %q", got)
	}

	// Move the site to B: A writes its last post, backs up, B catches up,
	// the marker switches on both servers.
	a.site.SetPost(t, 3, "written on A before the move")
	if r, _ := a.apply(t, day(44)); r.code != 0 {
		t.Fatalf("day 44 on A: %s", r)
	}
	if r, _ := b.apply(t, day(44).Add(10*time.Minute)); r.code != 0 {
		t.Fatalf("day 44 on B: %s", r)
	}
	a.setPrimary(t, "web-b")
	b.setPrimary(t, "web-b")
	plan := b.run(t, day(45), "plan")
	mustContain(t, plan, "this server becomes primary for job "+job+" (it was replica)")
	b.site.SetPost(t, 2, "written on B after the move")
	if r, res := b.apply(t, day(45)); r.code != 0 || res["status"] != "success" {
		t.Fatalf("day 45 on B (primary now): %s", r)
	}
	if r, res := a.apply(t, day(45).Add(10*time.Minute)); r.code != 0 || res["status"] != "success" {
		t.Fatalf("day 45 on A (replica now): %s", r)
	}
	for _, s := range []*wpServer{a, b} {
		if got := s.site.Post(t, 3); got != "written on A before the move" {
			t.Errorf("%s lost A's post: %q", s.name, got)
		}
		if got := s.site.Post(t, 2); got != "written on B after the move" {
			t.Errorf("%s lost B's post: %q", s.name, got)
		}
	}
	// And back to A.
	b.site.SetPost(t, 1, "written on B before moving back")
	if r, _ := b.apply(t, day(46)); r.code != 0 {
		t.Fatalf("day 46 on B: %s", r)
	}
	if r, _ := a.apply(t, day(46).Add(10*time.Minute)); r.code != 0 {
		t.Fatalf("day 46 on A: %s", r)
	}
	a.setPrimary(t, "web-a")
	b.setPrimary(t, "web-a")
	if r, _ := a.apply(t, day(47)); r.code != 0 {
		t.Fatalf("day 47 on A (primary again): %s", r)
	}
	if got := a.site.Post(t, 1); got != "written on B before moving back" {
		t.Fatalf("A lost B's post after moving back: %q", got)
	}

	// Recovery on A to 40 days ago (day 7): refused without --force on a
	// live primary, then done, with a safety snapshot that undoes it.
	before := a.site.Post(t, 1)
	at := day(47).Add(time.Hour)
	if r := a.run(t, at, "restore", job, "--at", "40d"); r.code == 0 || !strings.Contains(r.stderr, "is primary on this server") {
		t.Fatalf("recovery without --force: %s", r)
	}
	r = a.run(t, at, "restore", job, "--at", "40d", "--force")
	if r.code != 0 {
		t.Fatalf("recovery to 40 days ago: %s", r)
	}
	// What will change is said before, what changed after.
	mustContain(t, r, "into place", "would restore files of", "files added", "would restore database blog", "Safety snapshot", "restored database blog")
	if strings.Index(r.stdout, "would restore database blog") > strings.Index(r.stdout, "Safety snapshot") {
		t.Errorf("the changes were not shown before the restore:\n%s", r.stdout)
	}
	if got := a.site.Post(t, 1); got != "post of day 7" {
		t.Fatalf("after --at 40d post 1 is %q", got)
	}
	if got := a.file(t, "SITE/wp-content/uploads/day.txt"); got != "day 7" {
		t.Fatalf("after --at 40d day.txt is %q", got)
	}
	if got := a.site.Post(t, 3); got == "written on A before the move" {
		t.Fatalf("post 3 was written later, yet the recovery kept it: %q", got)
	}
	var safety string
	for _, line := range strings.Split(r.stdout, "\n") {
		if i := strings.Index(line, "--snapshot "); i >= 0 {
			safety = strings.Fields(line[i+len("--snapshot "):])[0]
		}
	}
	if r := a.run(t, at, "restore", job, "--snapshot", safety, "--force", "--no-safety-snapshot"); r.code != 0 {
		t.Fatalf("undo with the safety snapshot: %s", r)
	}
	if got := a.site.Post(t, 1); got != before {
		t.Fatalf("after undoing, post 1 is %q, want %q", got, before)
	}
	if got := a.site.Post(t, 2); got != "written on B after the move" {
		t.Fatalf("after undoing, post 2 is %q", got)
	}
}

// One broken site fails only its own job, with a message naming the site
// and the cause: a wp-config.php that cannot be read, a database that
// cannot be reached, a certificate path that does not exist.
func TestWordPressBrokenSitesFailAlone(t *testing.T) {
	db := mariadbtest.Start(t)
	vhosts := filepath.Join(t.TempDir(), "vhosts")
	site := func(name string) *wptest.Site {
		root := filepath.Join(vhosts, name, "SITE")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		return wptest.NewSite(t, wptest.Options{Root: root, Server: db, Database: name, User: name})
	}
	site("good")
	site("certless")
	site("nodb")
	broken := site("broken")
	// broken: a line wp-config.php's parser cannot read.
	cfgPath := filepath.Join(broken.Root, "wp-config.php")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "define( 'DB_NAME', 'broken' );", "define( 'DB_NAME', 'broken );", 1))
	if err := os.WriteFile(cfgPath, cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	// nodb: its database server is not there (a closed loopback port).
	nodb := filepath.Join(vhosts, "nodb", "SITE", "wp-config.php")
	cfg, _ = os.ReadFile(nodb)
	cfg = []byte(strings.Replace(string(cfg), fmt.Sprintf("127.0.0.1:%d", db.Port), "127.0.0.1:1", 1))
	if err := os.WriteFile(nodb, cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	dir := writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
target "nas" "home" {
  path = %q
}
source "wordpress" "site" {
  for_each     = wordpress_sites(%q)
  root         = each.value
  certificates = each.key == "certless" ? ["/etc/letsencrypt/live/certless.example.org"] : []
}
job "site" {
  for_each = source.wordpress.site
  source   = each.value
  target   = target.nas.home
}
`, t.TempDir(), vhosts)})
	mustInit(t, dir)
	r := runner(t, nil, "-C", dir, "-json", "apply")
	if r.code != 3 {
		t.Fatalf("apply with broken sites: %s", r)
	}
	var out struct {
		Jobs []struct{ Job, Status, Error string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, j := range out.Jobs {
		got[j.Job] = j.Status + ": " + j.Error
	}
	for job, want := range map[string][]string{
		`site["good"]`:     {"success: "},
		`site["broken"]`:   {"failure: ", filepath.Join(vhosts, "broken", "SITE"), "wp-config.php", "line"},
		`site["nodb"]`:     {"failure: ", filepath.Join(vhosts, "nodb", "SITE"), "127.0.0.1:1"},
		`site["certless"]`: {"failure: ", filepath.Join(vhosts, "certless", "SITE"), "/etc/letsencrypt/live/certless.example.org"},
	} {
		for _, w := range want {
			if !strings.Contains(got[job], w) {
				t.Errorf("%s: %q lacks %q", job, got[job], w)
			}
		}
	}
}

// The WordPress example configuration is valid and reads the old script's
// per-site files: the marker gives the role, max_NAS_space the quota,
// full_backup_freq the full-backup interval.
func TestWordPressExampleConfiguration(t *testing.T) {
	vhosts := t.TempDir()
	for site, files := range map[string]map[string]string{
		"blog": {"SITE/wp-config.php": "<?php\n", "SITE/wp-includes/version.php": "<?php $wp_version = '6.1';\n",
			"PRIMARY_IS_web-a": "", "max_NAS_space": "1500\n", "full_backup_freq": "1W\n"},
		"shop":   {"SITE/wp-config.php": "<?php\n", "SITE/wp-includes/version.php": "<?php\n", "PRIMARY_IS_web-b": ""},
		"static": {"htdocs/index.html": "hi"},
	} {
		for name, content := range files {
			p := filepath.Join(vhosts, site, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := filepath.Join(repoRoot, "examples", "wordpress-nas")
	env := []string{"RUNNER_HOSTNAME=web-a"}
	r := runner(t, env, "-C", dir, "-var", "vhosts="+vhosts, "validate")
	if r.code != 0 {
		t.Fatalf("validate: %s", r)
	}
	mustContain(t, r, "is valid", "2 jobs")
	// status reads only runner's state: point it at an empty state_dir by
	// way of a copy of the example with its runner block changed.
	cfg, err := os.ReadFile(filepath.Join(dir, "main.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), `state_dir        = "/var/lib/runner"`, fmt.Sprintf("state_dir = %q", t.TempDir()), 1)
	text = strings.Replace(text, `log_file         = "/var/log/runner/runner.log"`, "", 1)
	copyDir := writeConfig(t, map[string]string{"main.hcl": text})
	r = runner(t, env, "-C", copyDir, "-var", "vhosts="+vhosts, "-json", "status")
	var st []struct {
		Job   string
		Role  string
		Quota int64 `json:"quota_bytes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 2 {
		t.Fatalf("status: %v\n%s", err, r)
	}
	got := map[string]string{}
	for _, s := range st {
		got[s.Job] = fmt.Sprintf("%s %d", s.Role, s.Quota)
	}
	if got[`site["blog"]`] != "primary 1500000000" || got[`site["shop"]`] != "replica 1000000000" {
		t.Fatalf("roles and quotas from the old files: %v", got)
	}
}

// The README's demo runs end to end: a WordPress site backed up, damaged
// and recovered, with the post and the file back.
func TestWordPressDemo(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "wordpress-demo"))
	cmd.Env = append(os.Environ(), "RUNNER_BIN="+runnerBin, "DEMO_DIR="+filepath.Join(t.TempDir(), "demo"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"$ runner -C", "apply", `post 1 is now "Oops"`, "would restore database blog", "Safety snapshot", `post 1 is back to "Hello world!"`, "is back: true", "==> Done in"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
