package hcl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	config "github.com/backup-runner/runner/hcl"
)

func load(t *testing.T, dir string, opts config.Options) *config.Config {
	t.Helper()
	if opts.Resolver == nil {
		opts.Resolver = testResolver()
	}
	cfg, _, diags := config.Load(context.Background(), dir, opts)
	if diags.HasErrors() {
		for _, d := range diags {
			t.Log(config.Short(d))
		}
		t.Fatalf("unexpected diagnostics")
	}
	return cfg
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// makeVhosts creates site directories, marking those in primary as
// primary on host web1.
func makeVhosts(t *testing.T, sites []string, primary ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, s := range sites {
		if err := os.MkdirAll(filepath.Join(root, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range primary {
		if err := os.WriteFile(filepath.Join(root, s, "PRIMARY_IS_web1"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFullConfigEvaluates(t *testing.T) {
	vhosts := makeVhosts(t, []string{"blog", "shop"}, "blog")
	cfg := load(t, "testdata/valid/full", config.Options{
		Vars:   []string{"vhosts=" + vhosts},
		Getenv: env(map[string]string{"RUNNER_HOSTNAME": "web1"}),
	})

	if cfg.Runner.StateDir != "/var/lib/runner-test" || cfg.Runner.Parallel != 3 {
		t.Errorf("runner settings = %+v", cfg.Runner)
	}
	if len(cfg.Jobs) != 2 {
		t.Fatalf("want 2 jobs (one per site), got %d", len(cfg.Jobs))
	}
	blog, shop := cfg.Job(`site["blog"]`), cfg.Job("site[shop]")
	if blog == nil || shop == nil {
		t.Fatalf("jobs by name: blog=%v shop=%v", blog, shop)
	}
	if cfg.Job("site.blog") != blog {
		t.Errorf("site.blog does not name the blog job")
	}
	if blog.Role != config.RolePrimary || shop.Role != config.RoleReplica {
		t.Errorf("roles: blog %s, shop %s; want primary, replica (marker on blog only)", blog.Role, shop.Role)
	}
	if got := blog.Source.Address; got != `source.files.site["blog"]` {
		t.Errorf("blog source = %s", got)
	}
	if got := blog.Source.Config.GetAttr("root").AsString(); got != filepath.Join(vhosts, "blog") {
		t.Errorf("blog root = %s", got)
	}
	if blog.Target.Address != "target.nas.home" || len(blog.Target.Hooks) != 1 || blog.Target.Hooks[0].Address != "hook.exec.vpn" {
		t.Errorf("target = %s hooks %v", blog.Target.Address, blog.Target.Hooks)
	}
	if blog.Target.MinFreeRatio != 10 {
		t.Errorf("min_free_ratio = %g", blog.Target.MinFreeRatio)
	}
	if uid := blog.Target.Config.GetAttr("expect").GetAttr("uid").AsBigFloat().String(); uid != "98" {
		t.Errorf("expect.uid = %s", uid)
	}
	p := blog.Policy
	if p == nil || p.Name != "sites" || p.ScheduleText != "daily 03:00" || p.KeepDaily != 14 || p.MaxSize != 1000_000_000 || p.MaxForgetsPerRun != 1 {
		t.Fatalf("policy = %+v", p)
	}
	if sp := shop.Policy; sp == nil || sp.MaxSize != 500_000_000 || sp.KeepDaily != 14 || sp.Name != "sites" {
		t.Errorf("shop's policy with its own max_size = %+v", sp)
	}
	if p.CatchUp.String() != "3d" || p.FullEvery.String() != "1M" || len(p.Quiet) != 1 {
		t.Errorf("policy durations: catch_up %v full_every %v quiet %v", p.CatchUp, p.FullEvery, p.Quiet)
	}
	if len(blog.Hooks) != 1 || len(blog.Notify) != 1 || blog.Notify[0].Address != "notify.email.admin" {
		t.Errorf("job hooks %v notify %v", blog.Hooks, blog.Notify)
	}
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "main.hcl", `
variable "a" {
  default = "default"
}
variable "b" {
  default = "default"
}
variable "c" {
  default = "default"
}
variable "d" {
  default = "default"
}
variable "n" {
  type    = list(number)
  default = []
}
target "nas" "t" {
  path = "/${var.a}/${var.b}/${var.c}/${var.d}/${length(var.n)}"
}
`)
	varFile := write(t, t.TempDir(), "vars.hcl", "b = \"file\"\nc = \"file\"\n")
	cfg := load(t, dir, config.Options{
		Vars:     []string{"c=flag", "n=[1, 2, 3]"},
		VarFiles: []string{varFile},
		Getenv:   env(map[string]string{"RUNNER_VAR_a": "env", "RUNNER_VAR_b": "env"}),
	})
	// default < environment < -var-file < -var
	got := cfg.Instance("target.nas.t").Config.GetAttr("path").AsString()
	if got != "/env/file/flag/default/3" {
		t.Errorf("path = %s, want /env/file/flag/default/3", got)
	}
}

func TestBlockReferencesOrderIndependent(t *testing.T) {
	// A job declared before what it refers to, across files, still resolves.
	dir := t.TempDir()
	write(t, dir, "a.hcl", `
job "docs" {
  source = source.files.docs
  target = target.nas.home
}
`)
	write(t, dir, "b.hcl", `
source "files" "docs" {
  paths = [local.docs]
}
locals {
  docs = "${local.root}/docs"
  root = "/srv"
}
target "nas" "home" {
  path = "/mnt/${source.files.docs.paths[0]}"
}
`)
	cfg := load(t, dir, config.Options{})
	if got := cfg.Instance("target.nas.home").Config.GetAttr("path").AsString(); got != "/mnt//srv/docs" {
		t.Errorf("target path = %q", got)
	}
	if len(cfg.Jobs) != 1 || cfg.Jobs[0].Source.Address != "source.files.docs" {
		t.Errorf("jobs = %+v", cfg.Jobs)
	}
}

func TestCoreFunctions(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "secret.txt", "s3cret\n")
	write(t, dir, "main.hcl", `
target "nas" "t" {
  path = "/${hostname()}/${env("HOME_DIR")}/${env("MISSING", "fallback")}/${trimspace(file("secret.txt"))}/${fileexists("secret.txt")}/${fileexists("nope")}/${duration("1d")}/${bytes("1KiB")}"
}
`)
	cfg := load(t, dir, config.Options{Getenv: env(map[string]string{"HOME_DIR": "home", "RUNNER_HOSTNAME": "web7"})})
	got := cfg.Instance("target.nas.t").Config.GetAttr("path").AsString()
	if want := "/web7/home/fallback/s3cret/true/false/86400/1024"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
}

func TestForEachOverSetGivesKeysAndValues(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "main.hcl", `
source "files" "etc" {
  for_each = toset(["/etc/ssh", "/etc/apt"])
  paths    = [each.value]
}
target "nas" "t" {
  path = "/nas"
}
job "etc" {
  for_each = source.files.etc
  source   = each.value
  target   = target.nas.t
}
`)
	cfg := load(t, dir, config.Options{})
	var names []string
	for _, j := range cfg.Jobs {
		names = append(names, j.Name+"="+j.Source.Address)
	}
	want := `etc["/etc/apt"]=source.files.etc["/etc/apt"] etc["/etc/ssh"]=source.files.etc["/etc/ssh"]`
	if strings.Join(names, " ") != want {
		t.Errorf("jobs = %s\nwant %s", strings.Join(names, " "), want)
	}
}

func TestDiagnosticsAreAllReported(t *testing.T) {
	// Independent mistakes are all reported in one run, not one at a time.
	dir := t.TempDir()
	write(t, dir, "main.hcl", `
policy "a" {
  schedule = "sometimes"
}
policy "b" {
  keep_daily = "many"
}
target "nas" "t" {
  path = "relative"
}
`)
	_, _, diags := config.Load(context.Background(), dir, config.Options{Resolver: testResolver()})
	if n := len(errorsOnly(diags)); n != 3 {
		for _, d := range diags {
			t.Log(config.Short(d))
		}
		t.Fatalf("want 3 errors, got %d", n)
	}
}

func errorsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
