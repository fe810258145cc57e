// Command mysqlbench is the Go side of bench/mysql/run: it generates a
// deterministic WordPress-like database, dumps it into a runner
// repository and restores it from there with the mysql source's engine
// (plugins/mysql/dump, internal/archiver, internal/repo), and measures a
// writer's latency at 200 transactions per second.
//
//	mysqlbench gen     -addr 127.0.0.1:P -db wp -scale 1
//	mysqlbench dump    -addr 127.0.0.1:P -db wp -repo DIR -parallel 2
//	mysqlbench restore -addr 127.0.0.1:P -repo DIR -to wp_r -parallel 2
//	mysqlbench writer  -addr 127.0.0.1:P -seconds 10 -rate 200
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/backup-runner/runner/internal/archiver"
	"github.com/backup-runner/runner/internal/gctune"
	"github.com/backup-runner/runner/internal/priority"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/local"
	"github.com/backup-runner/runner/plugins/mysql/dump"
)

func main() {
	// The dump and restore measured here collect garbage as runner and its
	// plugin processes do.
	gctune.Apply()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mysqlbench gen|dump|restore|writer [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:3306", "server")
	db := fs.String("db", "wp", "database")
	scale := fs.Float64("scale", 1, "dataset scale")
	repoDir := fs.String("repo", "", "repository directory")
	to := fs.String("to", "", "restore into this database")
	parallel := fs.Int("parallel", 2, "connections")
	noBinlog := fs.Bool("no-binlog", false, "restore: do not write the binary log (as myloader without -e)")
	discard := fs.Bool("discard", false, "dump: throw the SQL away instead of storing it (measures the server and the formatting alone)")
	seconds := fs.Float64("seconds", 10, "writer duration")
	rate := fs.Int("rate", 200, "writer transactions per second")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	nice := fs.Int("nice", priority.Default, "dump, restore: run at this nice value, as runner does by default (0: unchanged)")
	_ = fs.Parse(os.Args[2:])
	// The dump and restore run at runner's priority; the writer stands
	// for the production load and keeps the normal one.
	if os.Args[1] == "dump" || os.Args[1] == "restore" {
		if err := priority.Lower(*nice); err != nil {
			fmt.Fprintln(os.Stderr, "mysqlbench:", err)
			os.Exit(1)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mysqlbench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "mysqlbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(*addr, *db, *scale)
	case "dump":
		err = doDump(ctx, *addr, *db, *repoDir, *parallel, *discard)
	case "restore":
		err = doRestore(ctx, *addr, *repoDir, *to, *parallel, *noBinlog)
	case "extract":
		err = extract(ctx, *repoDir, *to)
	case "writer":
		err = writer(*addr, time.Duration(*seconds*float64(time.Second)), *rate)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mysqlbench:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- gen

var words = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor
incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris
nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum eu fugiat
nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id
est laborum wordpress plugin theme backup server database garden recipe travel photo weekend café naïve 😀`)

func text(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if r.IntN(12) == 0 {
			b.WriteString("<p>")
		}
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(15) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func q(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

const schemaSQL = `
CREATE TABLE wp_users (ID bigint(20) unsigned NOT NULL AUTO_INCREMENT, user_login varchar(60) NOT NULL DEFAULT '', user_pass varchar(255) NOT NULL DEFAULT '', user_nicename varchar(50) NOT NULL DEFAULT '', user_email varchar(100) NOT NULL DEFAULT '', user_url varchar(100) NOT NULL DEFAULT '', user_registered datetime NOT NULL DEFAULT '0000-00-00 00:00:00', user_activation_key varchar(255) NOT NULL DEFAULT '', user_status int(11) NOT NULL DEFAULT 0, display_name varchar(250) NOT NULL DEFAULT '', PRIMARY KEY (ID), KEY user_login_key (user_login), KEY user_nicename (user_nicename), KEY user_email (user_email)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_posts (ID bigint(20) unsigned NOT NULL AUTO_INCREMENT, post_author bigint(20) unsigned NOT NULL DEFAULT 0, post_date datetime NOT NULL DEFAULT '0000-00-00 00:00:00', post_date_gmt datetime NOT NULL DEFAULT '0000-00-00 00:00:00', post_content longtext NOT NULL, post_title text NOT NULL, post_excerpt text NOT NULL, post_status varchar(20) NOT NULL DEFAULT 'publish', comment_status varchar(20) NOT NULL DEFAULT 'open', ping_status varchar(20) NOT NULL DEFAULT 'open', post_password varchar(255) NOT NULL DEFAULT '', post_name varchar(200) NOT NULL DEFAULT '', to_ping text NOT NULL, pinged text NOT NULL, post_modified datetime NOT NULL DEFAULT '0000-00-00 00:00:00', post_modified_gmt datetime NOT NULL DEFAULT '0000-00-00 00:00:00', post_content_filtered longtext NOT NULL, post_parent bigint(20) unsigned NOT NULL DEFAULT 0, guid varchar(255) NOT NULL DEFAULT '', menu_order int(11) NOT NULL DEFAULT 0, post_type varchar(20) NOT NULL DEFAULT 'post', post_mime_type varchar(100) NOT NULL DEFAULT '', comment_count bigint(20) NOT NULL DEFAULT 0, PRIMARY KEY (ID), KEY post_name (post_name(191)), KEY type_status_date (post_type,post_status,post_date,ID), KEY post_parent (post_parent), KEY post_author (post_author)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_postmeta (meta_id bigint(20) unsigned NOT NULL AUTO_INCREMENT, post_id bigint(20) unsigned NOT NULL DEFAULT 0, meta_key varchar(255) DEFAULT NULL, meta_value longtext DEFAULT NULL, PRIMARY KEY (meta_id), KEY post_id (post_id), KEY meta_key (meta_key(191))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_options (option_id bigint(20) unsigned NOT NULL AUTO_INCREMENT, option_name varchar(191) NOT NULL DEFAULT '', option_value longtext NOT NULL, autoload varchar(20) NOT NULL DEFAULT 'yes', PRIMARY KEY (option_id), UNIQUE KEY option_name (option_name), KEY autoload (autoload)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_comments (comment_ID bigint(20) unsigned NOT NULL AUTO_INCREMENT, comment_post_ID bigint(20) unsigned NOT NULL DEFAULT 0, comment_author tinytext NOT NULL, comment_author_email varchar(100) NOT NULL DEFAULT '', comment_author_url varchar(200) NOT NULL DEFAULT '', comment_author_IP varchar(100) NOT NULL DEFAULT '', comment_date datetime NOT NULL DEFAULT '0000-00-00 00:00:00', comment_date_gmt datetime NOT NULL DEFAULT '0000-00-00 00:00:00', comment_content text NOT NULL, comment_karma int(11) NOT NULL DEFAULT 0, comment_approved varchar(20) NOT NULL DEFAULT '1', comment_agent varchar(255) NOT NULL DEFAULT '', comment_type varchar(20) NOT NULL DEFAULT 'comment', comment_parent bigint(20) unsigned NOT NULL DEFAULT 0, user_id bigint(20) unsigned NOT NULL DEFAULT 0, PRIMARY KEY (comment_ID), KEY comment_post_ID (comment_post_ID), KEY comment_approved_date_gmt (comment_approved,comment_date_gmt), KEY comment_date_gmt (comment_date_gmt), KEY comment_parent (comment_parent), KEY comment_author_email (comment_author_email(10))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE bench_writer (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(64) NOT NULL, t datetime(6) NOT NULL) ENGINE=InnoDB`

func gen(addr, db string, scale float64) error {
	c, err := client.Connect(addr, "root", "", "")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Execute("CREATE DATABASE " + db + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"); err != nil {
		return err
	}
	if _, err := c.Execute("USE " + db); err != nil {
		return err
	}
	for _, s := range strings.Split(schemaSQL, ";\n") {
		if _, err := c.Execute(s); err != nil {
			return err
		}
	}
	n := func(x int) int { return int(float64(x) * scale) }
	type job struct {
		table, cols string
		rows        int
		row         func(r *rand.Rand, i int) string
	}
	date := func(r *rand.Rand) string {
		return q(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(15 * 365 * 24 * time.Hour)))).Format("2006-01-02 15:04:05"))
	}
	jobs := []job{
		{"wp_users", "user_login,user_pass,user_nicename,user_email,user_registered,display_name", n(10000), func(r *rand.Rand, i int) string {
			return fmt.Sprintf("(%s,%s,%s,%s,%s,%s)", q(fmt.Sprintf("user%d", i)), q(fmt.Sprintf("$P$B%030x", r.Uint64())), q(fmt.Sprintf("user-%d", i)), q(fmt.Sprintf("user%d@example.org", i)), date(r), q(text(r, 20)))
		}},
		{"wp_posts", "post_author,post_date,post_date_gmt,post_content,post_title,post_excerpt,post_name,to_ping,pinged,post_modified,post_modified_gmt,post_content_filtered,guid,post_type", n(60000), func(r *rand.Rand, i int) string {
			d := date(r)
			size := 2000 + r.IntN(12000)
			return fmt.Sprintf("(%d,%s,%s,%s,%s,'',%s,'','',%s,%s,'',%s,%s)", 1+r.IntN(n(10000)), d, d, q(text(r, size)), q(text(r, 40)), q(fmt.Sprintf("post-%d", i)), d, d, q(fmt.Sprintf("https://example.org/?p=%d", i)), q([]string{"post", "page", "revision", "attachment"}[r.IntN(4)]))
		}},
		{"wp_postmeta", "post_id,meta_key,meta_value", n(600000), func(r *rand.Rand, i int) string {
			return fmt.Sprintf("(%d,%s,%s)", 1+r.IntN(n(60000)), q([]string{"_edit_lock", "_edit_last", "_thumbnail_id", "_wp_page_template", "_yoast_wpseo_title", "views"}[r.IntN(6)]), q(text(r, 10+r.IntN(150))))
		}},
		{"wp_options", "option_name,option_value,autoload", n(3000), func(r *rand.Rand, i int) string {
			return fmt.Sprintf("(%s,%s,%s)", q(fmt.Sprintf("option_%d", i)), q(text(r, 50+r.IntN(4000))), q([]string{"yes", "no"}[r.IntN(2)]))
		}},
		{"wp_comments", "comment_post_ID,comment_author,comment_author_email,comment_author_IP,comment_date,comment_date_gmt,comment_content,comment_agent", n(200000), func(r *rand.Rand, i int) string {
			d := date(r)
			return fmt.Sprintf("(%d,%s,%s,%s,%s,%s,%s,%s)", 1+r.IntN(n(60000)), q(text(r, 15)), q(fmt.Sprintf("c%d@example.com", i)), q(fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))), d, d, q(text(r, 50+r.IntN(600))), q("Mozilla/5.0 (X11; Linux x86_64)"))
		}},
	}
	for _, j := range jobs {
		r := rand.New(rand.NewPCG(uint64(len(j.table)), 42))
		start := time.Now()
		var b strings.Builder
		flush := func() error {
			if b.Len() == 0 {
				return nil
			}
			_, err := c.Execute(b.String())
			b.Reset()
			return err
		}
		for i := 1; i <= j.rows; i++ {
			if b.Len() == 0 {
				b.WriteString("INSERT INTO " + j.table + " (" + j.cols + ") VALUES ")
			} else {
				b.WriteByte(',')
			}
			b.WriteString(j.row(r, i))
			if b.Len() > 4<<20 {
				if err := flush(); err != nil {
					return fmt.Errorf("%s: %w", j.table, err)
				}
			}
		}
		if err := flush(); err != nil {
			return fmt.Errorf("%s: %w", j.table, err)
		}
		fmt.Fprintf(os.Stderr, "gen: %s: %d rows in %s\n", j.table, j.rows, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// ---------------------------------------------------------------- dump / restore

type streamItem struct {
	w    *archiver.StreamWriter
	name string
	out  *[]repo.Item
	mu   *sync.Mutex
}

func (s *streamItem) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *streamItem) Close() error {
	it, err := s.w.Close()
	if err != nil {
		return err
	}
	s.mu.Lock()
	*s.out = append(*s.out, it)
	s.mu.Unlock()
	return nil
}
func (s *streamItem) CloseWithError(err error) error { s.w.Abort(err); return nil }

type discardItem struct{}

func (discardItem) Write(p []byte) (int, error)  { return len(p), nil }
func (discardItem) Close() error                 { return nil }
func (discardItem) CloseWithError(e error) error { return nil }

func doDump(ctx context.Context, addr, db, dir string, parallel int, discard bool) error {
	if discard {
		start := time.Now()
		res, err := dump.Dump(ctx, dump.Config{Conn: dump.ConnOptions{Addr: addr, User: "root"}, Filter: dump.Filter{Databases: []string{db}, ExcludeTables: []string{"bench_writer"}}, Parallel: parallel},
			func(it dump.Item) (dump.ItemWriter, error) { return discardItem{}, nil })
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "dump (discarded): %d bytes of SQL in %s\n", res.Bytes, time.Since(start).Round(time.Millisecond))
		return nil
	}
	st, err := local.New(dir)
	if err != nil {
		return err
	}
	if err := repo.Init(ctx, st, repo.InitOptions{Unencrypted: true}); err != nil {
		return err
	}
	r, err := repo.Open(ctx, st, repo.OpenOptions{Lock: repo.LockShared})
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	a := archiver.New(r, archiver.Options{})
	var items []repo.Item
	var mu sync.Mutex
	start := time.Now()
	res, err := dump.Dump(ctx, dump.Config{Conn: dump.ConnOptions{Addr: addr, User: "root"}, Filter: dump.Filter{Databases: []string{db}, ExcludeTables: []string{"bench_writer"}}, Parallel: parallel},
		func(it dump.Item) (dump.ItemWriter, error) {
			return &streamItem{w: a.Stream(ctx, it.Name), name: it.Name, out: &items, mu: &mu}, nil
		})
	if err != nil {
		return err
	}
	sn := &repo.Snapshot{Job: "mysqlbench", Host: "bench", Time: start, Items: items, Source: res.Manifest.Meta(res.NonTransactional)}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "dump: %d items, %d bytes of SQL in %s\n", len(items), res.Bytes, time.Since(start).Round(time.Millisecond))
	return nil
}

func doRestore(ctx context.Context, addr, dir, to string, parallel int, noBinlog bool) error {
	st, err := local.New(dir)
	if err != nil {
		return err
	}
	r, err := repo.Open(ctx, st, repo.OpenOptions{Lock: repo.LockShared})
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	sns, err := r.ListSnapshots(ctx)
	if err != nil || len(sns) == 0 {
		return fmt.Errorf("no snapshot: %v", err)
	}
	sn := sns[len(sns)-1]
	m, err := dump.DecodeManifest(sn.Source[dump.MetaManifest])
	if err != nil {
		return err
	}
	target := map[string]string{}
	if to != "" {
		target[m.Databases[0].Name] = to
	}
	start := time.Now()
	i := 0
	var pr *io.PipeReader
	res, err := dump.Load(ctx, dump.LoadConfig{Conn: dump.ConnOptions{Addr: addr, User: "root"}, Parallel: parallel, Manifest: m, Target: target, NoBinlog: noBinlog}, func() (dump.Item, io.Reader, error) {
		if pr != nil {
			_ = pr.Close()
		}
		if i >= len(sn.Items) {
			return dump.Item{}, nil, io.EOF
		}
		it := sn.Items[i]
		i++
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		go func() {
			_, err := archiver.RestoreStream(ctx, r, it, pw)
			pw.CloseWithError(err)
		}()
		return dump.Item{Name: it.Name}, pr, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "restore: %d tables, %d rows, %d checksums verified in %s\n", res.Tables, res.Rows, res.Verified, time.Since(start).Round(time.Millisecond))
	return nil
}

// extract writes the items of the newest snapshot as .sql files into
// dir, for experiments with the stock client.
func extract(ctx context.Context, dir, out string) error {
	st, err := local.New(dir)
	if err != nil {
		return err
	}
	r, err := repo.Open(ctx, st, repo.OpenOptions{Lock: repo.LockShared})
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	sns, err := r.ListSnapshots(ctx)
	if err != nil || len(sns) == 0 {
		return fmt.Errorf("no snapshot: %v", err)
	}
	for i, it := range sns[len(sns)-1].Items {
		f, err := os.Create(fmt.Sprintf("%s/%03d-%s.sql", out, i, strings.NewReplacer("/", "#", ":", "#").Replace(it.Name)))
		if err != nil {
			return err
		}
		if _, err := archiver.RestoreStream(ctx, r, it, f); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------- writer

// writer commits rate small transactions per second and prints the p50,
// p99 and max commit latency.
func writer(addr string, d time.Duration, rate int) error {
	c, err := client.Connect(addr, "root", "", "wp")
	if err != nil {
		return err
	}
	defer c.Close()
	var lat []time.Duration
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		t := time.Now()
		if _, err := c.Execute(fmt.Sprintf("INSERT INTO bench_writer (v, t) VALUES ('row %d', NOW(6))", i)); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
	fmt.Printf("writer: %d tx, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", len(lat), ms(p(0.5)), ms(p(0.99)), ms(lat[len(lat)-1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
