package dump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/client"
)

// LoadConfig is what Load needs.
type LoadConfig struct {
	Conn ConnOptions
	// Parallel is the number of loading connections (default: four per
	// CPU, at most 64: a load is bound by the server, whose connection
	// threads are each busy only about half of the time, waiting on the
	// redo log and the page cleaner, so more connections than cores keep
	// the cores busy; docs/MYSQL.md has the measurements).
	Parallel int
	// Manifest of the snapshot being loaded (from its meta).
	Manifest *Manifest
	// Target maps a database of the snapshot to the database it is loaded
	// into; databases not in the map keep their names.
	Target map[string]string
	// Force replaces tables (and views, triggers, routines, events) of the
	// same names in a target database that already holds tables. Without
	// it such a target is refused.
	Force bool
	// DryRun connects and checks, and changes nothing.
	DryRun bool
	// UsersAndGrants also creates the dumped accounts and grants.
	UsersAndGrants bool
	// InsertOnly executes the dump's INSERT statements as they are, even
	// where the server allows LOAD DATA LOCAL INFILE (which is faster).
	InsertOnly bool
	// NoBinlog loads the rows without writing them to the binary log
	// (sql_log_bin = 0 on the loading connections). Replicas and
	// point-in-time recovery then do not see the restored rows.
	NoBinlog bool
	Log      *slog.Logger
}

// LoadResult says what a load did (or, on a dry run, would do).
type LoadResult struct {
	Notes    []string
	Tables   int
	Rows     int64
	Verified int // tables whose checksum was compared
}

// LoadSource yields the items of a snapshot in order; io.EOF ends it. The
// reader is valid until the next call.
type LoadSource func() (Item, io.Reader, error)

// target is one database being restored.
type target struct {
	src      Database
	name     string // database to restore into
	staging  string
	exists   bool
	existing map[string]string // table name -> TABLE_TYPE in the target now
	created  bool              // staging was created
	objects  []byte
}

type loadedTable struct {
	t       *Table
	tgt     *target
	rows    int64
	arrived map[int]bool
	create  chan struct{}
	once    sync.Once
	// pending counts the table's tasks not yet run, plus one held by the
	// reader until every part of the table has been read; whoever brings
	// it to zero queues the table for verification.
	pending atomic.Int64
	fedAll  bool // the reader has released its hold
}

// Load restores a dump: every database is loaded into a fresh staging
// database first, verified (row counts and CHECKSUM TABLE against the
// manifest), then its tables are swapped into the target database in one
// atomic RENAME TABLE, and the views, triggers, routines and events are
// created. A failure before the swap leaves the target untouched.
func Load(ctx context.Context, cfg LoadConfig, next LoadSource) (*LoadResult, error) {
	if cfg.Manifest == nil {
		return nil, errors.New("load: no manifest")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = min(4*runtime.NumCPU(), 64)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l := &loader{cfg: cfg, ctx: ctx, cancel: cancel, targets: map[string]*target{}, tables: map[string]*loadedTable{}, items: manifestItems(cfg.Manifest)}
	defer l.closeAll()
	res, err := l.run(next)
	if err != nil {
		l.dropStaging()
		return nil, err
	}
	return res, nil
}

type loader struct {
	cfg     LoadConfig
	ctx     context.Context
	cancel  context.CancelCauseFunc
	ctl     *session
	workers []*session
	targets map[string]*target // by source database
	order   []*target
	tables  map[string]*loadedTable // by source db \x00 table
	users   []byte
	server  string
	items   map[string]itemRef
	res     LoadResult
	infile  bool // rows go in by LOAD DATA LOCAL INFILE

	// Verification: tables are queued on verifyQueue as they finish
	// loading (see loadedTable.pending); sums says whether checksums are
	// compared; problems collects what did not match.
	verifyQueue chan *loadedTable
	sums        bool
	verifyMu    sync.Mutex
	problems    []string
}

func (l *loader) closeAll() {
	l.ctl.close()
	for _, w := range l.workers {
		w.close()
	}
}

func (l *loader) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.res.Notes = append(l.res.Notes, msg)
	l.cfg.Log.Info(msg)
}

func stagingName(db string) string {
	h := fnv.New32a()
	h.Write([]byte(db))
	return fmt.Sprintf("runner_restore_%08x_%04x", h.Sum32(), rand.IntN(1<<16))
}

func (l *loader) run(next LoadSource) (*LoadResult, error) {
	var err error
	if l.ctl, err = connect(l.ctx, l.cfg.Conn); err != nil {
		return nil, err
	}
	if err := setupSession(l.ctl); err != nil {
		return nil, err
	}
	if l.server, err = l.ctl.one("SELECT VERSION()"); err != nil {
		return nil, err
	}
	if err := l.checkTargets(); err != nil {
		return nil, err
	}
	if !l.cfg.InsertOnly {
		v, err := l.ctl.one("SELECT @@GLOBAL.local_infile")
		if err != nil {
			return nil, err
		}
		l.infile = v == "1" || strings.EqualFold(v, "ON")
		if !l.infile {
			l.note("the server does not allow LOAD DATA LOCAL INFILE (local_infile is off): rows are loaded with INSERT statements, which is slower")
		}
	}
	if l.cfg.DryRun {
		for _, tg := range l.order {
			n := 0
			var rows int64
			replaced := 0
			for _, t := range l.cfg.Manifest.Tables {
				if t.Database == tg.src.Name {
					n++
					rows += t.Rows
					if _, ok := tg.existing[t.Name]; ok {
						replaced++
					}
				}
			}
			l.note("would load %d tables (%d rows) of %s into %s through a staging database, replacing %d existing tables", n, rows, quoteIdent(tg.src.Name), quoteIdent(tg.name), replaced)
		}
		return &l.res, nil
	}
	for _, tg := range l.order {
		tg.staging = stagingName(tg.name)
		if _, err := l.ctl.exec(fmt.Sprintf("CREATE DATABASE %s CHARACTER SET %s COLLATE %s", quoteIdent(tg.staging), tg.src.Charset, tg.src.Collation)); err != nil {
			return nil, fmt.Errorf("create staging database %s: %w", quoteIdent(tg.staging), err)
		}
		tg.created = true
	}
	var opts []client.Option
	if l.infile {
		opts = append(opts, withLocalInfile)
	}
	for range l.cfg.Parallel {
		s, err := connect(l.ctx, l.cfg.Conn, opts...)
		if err != nil {
			return nil, err
		}
		l.workers = append(l.workers, s)
		if err := setupSession(s); err != nil {
			return nil, err
		}
		// As the items' headers say: any worker may load any part of a
		// table, so each starts in the state the headers set.
		if _, err := s.exec("SET SESSION foreign_key_checks = 0, SESSION unique_checks = 0"); err != nil {
			return nil, err
		}
		if l.cfg.NoBinlog {
			if _, err := s.exec("SET SESSION sql_log_bin = 0"); err != nil {
				return nil, fmt.Errorf("restore without the binary log (binlog = false) needs SUPER or BINLOG ADMIN: %w", err)
			}
		}
	}
	for _, t := range l.cfg.Manifest.Tables {
		lt := &loadedTable{t: &t, tgt: l.targets[t.Database], arrived: map[int]bool{}, create: make(chan struct{})}
		lt.pending.Store(1)
		l.tables[t.Database+"\x00"+t.Name] = lt
	}
	if err := l.loadAndVerify(next); err != nil {
		return nil, err
	}
	for _, tg := range l.order {
		if err := l.swap(tg); err != nil {
			return nil, err
		}
	}
	for _, tg := range l.order {
		if err := l.objects(tg); err != nil {
			return nil, err
		}
	}
	if l.cfg.UsersAndGrants && len(l.users) > 0 {
		if err := l.script(l.ctl, l.users, false, nil); err != nil {
			return nil, fmt.Errorf("create users and grants: %w", err)
		}
	}
	return &l.res, nil
}

// checkTargets decides where each database goes and refuses to overwrite
// without Force.
func (l *loader) checkTargets() error {
	seen := map[string]string{}
	for _, db := range l.cfg.Manifest.Databases {
		name := db.Name
		if n, ok := l.cfg.Target[db.Name]; ok && n != "" {
			name = n
		}
		if other, dup := seen[name]; dup {
			return fmt.Errorf("databases %s and %s of the snapshot would both be restored into %s", quoteIdent(other), quoteIdent(db.Name), quoteIdent(name))
		}
		seen[name] = db.Name
		tg := &target{src: db, name: name, existing: map[string]string{}}
		l.targets[db.Name] = tg
		l.order = append(l.order, tg)
		rows, err := l.ctl.rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " + quoteString(name))
		if err != nil {
			return err
		}
		tg.exists = len(rows) > 0
		if !tg.exists {
			continue
		}
		rows, err = l.ctl.rows("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + quoteString(name))
		if err != nil {
			return err
		}
		for _, r := range rows {
			tg.existing[r[0]] = r[1]
		}
		if len(tg.existing) > 0 && !l.cfg.Force {
			return fmt.Errorf("database %s on %s exists and holds %d tables: restore with force to replace the snapshot's tables in it, or into another database", quoteIdent(name), l.cfg.Conn.Addr, len(tg.existing))
		}
	}
	for from := range l.cfg.Target {
		if !slices.ContainsFunc(l.cfg.Manifest.Databases, func(d Database) bool { return d.Name == from }) {
			return fmt.Errorf("the snapshot holds no database %s", quoteIdent(from))
		}
	}
	return nil
}

// itemRef is what the manifest says an item holds.
type itemRef struct {
	kind, db, table string
	part            int
}

func manifestItems(m *Manifest) map[string]itemRef {
	refs := map[string]itemRef{}
	for _, t := range m.Tables {
		for i, name := range t.Items {
			refs[name] = itemRef{kind: KindTable, db: t.Database, table: t.Name, part: i + 1}
		}
	}
	for _, d := range m.Databases {
		refs[d.ObjectsItem] = itemRef{kind: KindObjects, db: d.Name}
	}
	if m.UsersItem != "" {
		refs[m.UsersItem] = itemRef{kind: KindUsers}
	}
	return refs
}

// task is one piece of work for any worker connection: a script of
// statements run in order on one connection (an item's header and CREATE
// TABLE, or INSERT statements), or a batch of rows for LOAD DATA. Tasks of
// one item may run on several connections at once, so that one large
// table keeps every connection busy; every task but the one creating the
// table waits until the table exists.
type task struct {
	lt     *loadedTable
	part   int
	create bool     // the script creates the table
	stmts  [][]byte // a script
	batch  *infileBatch
}

// scriptBytes bounds the INSERT statements gathered into one task.
const scriptBytes = 8 << 20

// loadItems reads the items in order and hands their statements and row
// batches to the workers through one queue. Reading (decompression,
// splitting, converting) runs ahead of the workers by a bounded number of
// tasks.
func (l *loader) loadItems(next LoadSource) error {
	// Each queued task may hold a batch of infileBatchBytes: half a task
	// per connection is enough to have the next one ready when a
	// connection finishes (the conversion is much faster than the server),
	// and keeps memory at about one batch per connection.
	queue := make(chan *task, max(len(l.workers)/2, 1))
	var wg sync.WaitGroup
	for _, w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range queue {
				if context.Cause(l.ctx) == nil {
					if err := l.runTask(w, t); err != nil {
						l.cancel(fmt.Errorf("restore %s.%s into %s: %w", quoteIdent(t.lt.t.Database), quoteIdent(t.lt.t.Name), quoteIdent(t.lt.tgt.name), err))
					}
				}
				if t.batch != nil {
					t.batch.release()
				}
				l.taskDone(t.lt)
			}
		}()
	}
	err := l.readItems(next, queue)
	close(queue)
	wg.Wait()
	if err != nil {
		l.cancel(err)
		return err
	}
	if err := context.Cause(l.ctx); err != nil {
		return err
	}
	for _, t := range l.cfg.Manifest.Tables {
		lt := l.tables[t.Database+"\x00"+t.Name]
		if len(lt.arrived) != len(t.Items) {
			return fmt.Errorf("the snapshot lacks items of table %s.%s: %d of %d arrived", quoteIdent(t.Database), quoteIdent(t.Name), len(lt.arrived), len(t.Items))
		}
	}
	return nil
}

func (l *loader) readItems(next LoadSource, queue chan<- *task) error {
	for {
		if err := context.Cause(l.ctx); err != nil {
			return err
		}
		it, r, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// Items are identified by name through the manifest: the
		// repository keeps item names, not item meta.
		ref, ok := l.items[it.Name]
		if !ok {
			return fmt.Errorf("item %q is not part of the snapshot's mysql manifest", it.Name)
		}
		switch ref.kind {
		case KindObjects:
			tg := l.targets[ref.db]
			if tg == nil {
				return fmt.Errorf("item %q belongs to database %s, which the snapshot's manifest does not list", it.Name, quoteIdent(ref.db))
			}
			if tg.objects, err = io.ReadAll(r); err != nil {
				return err
			}
			continue
		case KindUsers:
			if l.users, err = io.ReadAll(r); err != nil {
				return err
			}
			continue
		case KindTable:
		default:
			return fmt.Errorf("item %q has unknown kind %q", it.Name, ref.kind)
		}
		lt := l.tables[ref.db+"\x00"+ref.table]
		if lt == nil {
			return fmt.Errorf("item %q: table %s.%s is not in the snapshot's manifest", it.Name, quoteIdent(ref.db), quoteIdent(ref.table))
		}
		if ref.part < 1 {
			return fmt.Errorf("item %q: bad part %d", it.Name, ref.part)
		}
		if ref.part > 1 && !lt.arrived[1] {
			return fmt.Errorf("item %q: part %d of %s.%s came before its first part", it.Name, ref.part, quoteIdent(lt.t.Database), quoteIdent(lt.t.Name))
		}
		lt.arrived[ref.part] = true
		if err := l.feed(lt, ref.part, r, queue); err != nil {
			return fmt.Errorf("read item %q: %w", it.Name, err)
		}
		if !lt.fedAll && len(lt.arrived) == len(lt.t.Items) {
			lt.fedAll = true
			l.taskDone(lt)
		}
	}
}

// feed splits one table item into tasks. Statements before the first
// INSERT (the header, and in part 1 the CREATE TABLE) form the first task;
// with LOAD DATA the rows of the INSERT statements are converted into
// batches, otherwise consecutive INSERTs are gathered into scripts that
// start with the header's last SET NAMES.
func (l *loader) feed(lt *loadedTable, part int, r io.Reader, queue chan<- *task) error {
	send := func(t *task) error {
		lt.pending.Add(1)
		select {
		case queue <- t:
			return nil
		case <-l.ctx.Done():
			if t.batch != nil {
				t.batch.release()
			}
			lt.pending.Add(-1) // the load has failed: nothing to verify
			return context.Cause(l.ctx)
		}
	}
	head := &task{lt: lt, part: part}
	var (
		cur     *infileBatch
		script  *task
		size    int
		names   []byte // the last SET NAMES of the header
		created = part != 1
	)
	flush := func() error {
		if head != nil {
			t := head
			head = nil
			if part == 1 && !t.create {
				return errors.New("the first part of a table holds no CREATE TABLE")
			}
			if err := send(t); err != nil {
				return err
			}
		}
		if cur != nil {
			b := cur
			cur = nil
			if len(b.buf) == 0 {
				b.release()
			} else if err := send(&task{lt: lt, part: part, batch: b}); err != nil {
				return err
			}
		}
		if script != nil {
			t := script
			script, size = nil, 0
			if err := send(t); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() {
		if cur != nil {
			cur.release()
		}
	}()
	sp := NewSplitter(r)
	sp.OneLineInserts = true
	for {
		stmt, err := sp.Next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(stmt, []byte("INSERT INTO ")) {
			if head == nil {
				return fmt.Errorf("unexpected statement after the rows: %s", firstLine(stmt))
			}
			if bytes.HasPrefix(stmt, []byte("CREATE TABLE ")) {
				if created {
					return errors.New("a second CREATE TABLE")
				}
				created, head.create = true, true
			}
			if bytes.HasPrefix(stmt, []byte("SET NAMES ")) {
				names = bytes.Clone(stmt)
			}
			head.stmts = append(head.stmts, bytes.Clone(stmt))
			continue
		}
		if head != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		if l.infile {
			if table, cols, values, ok := parseInsert(stmt); ok {
				if cur != nil && !cur.same(table, cols) {
					if err := flush(); err != nil {
						return err
					}
				}
				if cur == nil {
					cur = newBatch(table, cols)
				}
				mark := len(cur.buf)
				intro := slices.Clone(cur.intro)
				buf, n, ok := appendInfileRows(cur.buf, values, len(cols), cur.intro)
				cur.buf = buf
				if ok {
					cur.rows += n
					if len(cur.buf) >= infileBatchBytes {
						if err := flush(); err != nil {
							return err
						}
					}
					continue
				}
				// Not Dump's form after all: the statement goes as it is.
				cur.buf, cur.intro = cur.buf[:mark], intro
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if script == nil {
			script = &task{lt: lt, part: part}
			if names != nil {
				script.stmts = append(script.stmts, names)
			}
		}
		script.stmts = append(script.stmts, bytes.Clone(stmt))
		size += len(stmt)
		if size >= scriptBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// runTask runs one task on w, in the staging database.
func (l *loader) runTask(w *session, t *task) error {
	lt := t.lt
	if t.create {
		defer lt.once.Do(func() { close(lt.create) })
	} else {
		select {
		case <-lt.create:
		case <-l.ctx.Done():
			return context.Cause(l.ctx)
		}
	}
	if w.db != lt.tgt.staging {
		if _, err := w.exec("USE " + quoteIdent(lt.tgt.staging)); err != nil {
			return err
		}
		w.db = lt.tgt.staging
	}
	var rows int64
	if b := t.batch; b != nil {
		r, err := w.loadBatch(b)
		if err == nil && r.Warnings > 0 {
			err = loadWarnings(w, r.Warnings)
		}
		if err == nil && int64(r.AffectedRows) != b.rows {
			err = fmt.Errorf("LOAD DATA stored %d of %d rows", r.AffectedRows, b.rows)
		}
		if err != nil {
			return err
		}
		rows = int64(r.AffectedRows)
	}
	for _, stmt := range t.stmts {
		r, err := w.execBytes(stmt)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(stmt, []byte("INSERT")) {
			rows += int64(r.AffectedRows)
		} else if bytes.HasPrefix(stmt, []byte("CREATE TABLE")) {
			lt.once.Do(func() { close(lt.create) })
		}
		r.Close()
	}
	l.countRows(lt, rows)
	return nil
}

// loadWarnings turns the warnings of a LOAD DATA into an error: LOAD DATA
// LOCAL skips rows and adjusts values with only a warning where an INSERT
// of the same rows would have failed or been exact.
func loadWarnings(w *session, n uint16) error {
	rows, err := w.rows("SHOW WARNINGS LIMIT 3")
	if err != nil {
		return fmt.Errorf("LOAD DATA gave %d warnings", n)
	}
	var msgs []string
	for _, r := range rows {
		if len(r) >= 3 {
			msgs = append(msgs, r[2])
		}
	}
	return fmt.Errorf("LOAD DATA gave %d warnings: %s", n, strings.Join(msgs, "; "))
}

var rowsMu sync.Mutex

func (l *loader) countRows(lt *loadedTable, n int64) {
	rowsMu.Lock()
	lt.rows += n
	rowsMu.Unlock()
}

// comparableServers: CHECKSUM TABLE values agree between servers of the
// same flavour and major.minor version.
func comparableServers(a, b string) bool {
	key := func(v string) string {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return v
		}
		return parts[0] + "." + parts[1] + "/" + strconv.FormatBool(isMariaDB(v))
	}
	return key(a) == key(b)
}

// taskDone ends one of lt's tasks (or the reader's hold on it); the last
// one queues the table for verification. A failed task still ends: the
// verifier then skips the table, since the load as a whole has failed.
func (l *loader) taskDone(lt *loadedTable) {
	if lt.pending.Add(-1) == 0 {
		l.verifyQueue <- lt // never blocks: it has room for every table
	}
}

// loadAndVerify loads every table and verifies each one (row count and
// CHECKSUM TABLE against the manifest) as soon as it has loaded, on the
// control connection, which is idle during the load: the checksums of
// the tables loaded early overlap with the loading of the others. The
// tables still unverified when the load ends are verified on every
// connection at once.
func (l *loader) loadAndVerify(next LoadSource) error {
	l.sums = comparableServers(l.cfg.Manifest.Server, l.server)
	if !l.sums {
		l.note("checksums not compared: dumped on %s, restored on %s; row counts are", l.cfg.Manifest.Server, l.server)
	}
	l.verifyQueue = make(chan *loadedTable, len(l.tables))
	var wg sync.WaitGroup
	verifier := func(s *session) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lt := range l.verifyQueue {
				if context.Cause(l.ctx) == nil {
					l.verifyTable(s, lt)
				}
			}
		}()
	}
	verifier(l.ctl)
	err := l.loadItems(next)
	// Every task has ended, so every table that loaded is queued.
	close(l.verifyQueue)
	if err == nil {
		for _, w := range l.workers {
			verifier(w)
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if err := context.Cause(l.ctx); err != nil {
		return err
	}
	if len(l.problems) > 0 {
		slices.Sort(l.problems)
		return fmt.Errorf("verification failed, the target was left untouched: %s", strings.Join(l.problems, "; "))
	}
	return nil
}

// verifyTable compares the row count and checksum of a loaded table in
// its staging database with the manifest, on session s.
func (l *loader) verifyTable(s *session, lt *loadedTable) {
	msg, verified := "", false
	if lt.rows != lt.t.Rows {
		msg = fmt.Sprintf("%s.%s: %d rows loaded, the dump recorded %d", quoteIdent(lt.t.Database), quoteIdent(lt.t.Name), lt.rows, lt.t.Rows)
	} else if l.sums && lt.t.Checksum != "" {
		got, err := s.rows("CHECKSUM TABLE " + quoteIdent(lt.tgt.staging) + "." + quoteIdent(lt.t.Name))
		switch {
		case err != nil:
			msg = fmt.Sprintf("%s.%s: CHECKSUM TABLE: %v", quoteIdent(lt.t.Database), quoteIdent(lt.t.Name), err)
		case len(got) == 0 || got[0][1] != lt.t.Checksum:
			v := ""
			if len(got) > 0 {
				v = got[0][1]
			}
			msg = fmt.Sprintf("%s.%s: checksum %s after loading, %s at dump time", quoteIdent(lt.t.Database), quoteIdent(lt.t.Name), v, lt.t.Checksum)
		default:
			verified = true
		}
	}
	l.verifyMu.Lock()
	defer l.verifyMu.Unlock()
	if msg != "" {
		l.problems = append(l.problems, msg)
	}
	if verified {
		l.res.Verified++
	}
	l.res.Tables++
	l.res.Rows += lt.rows
}

// swap moves the staging tables into the target in one RENAME TABLE: the
// target's tables of the same names become _runner_old_N (dropped right
// after), so at every moment each name holds either the old or the new
// table.
func (l *loader) swap(tg *target) error {
	if !tg.exists {
		if _, err := l.ctl.exec(fmt.Sprintf("CREATE DATABASE %s CHARACTER SET %s COLLATE %s", quoteIdent(tg.name), tg.src.Charset, tg.src.Collation)); err != nil {
			return fmt.Errorf("create database %s: %w", quoteIdent(tg.name), err)
		}
	}
	qt := quoteIdent(tg.name)
	var pairs, olds []string
	var oldViews []string
	n := 0
	for _, t := range l.cfg.Manifest.Tables {
		if t.Database != tg.src.Name {
			continue
		}
		if typ, ok := tg.existing[t.Name]; ok {
			var old string
			for {
				n++
				old = fmt.Sprintf("_runner_old_%d", n)
				if _, taken := tg.existing[old]; !taken {
					break
				}
			}
			pairs = append(pairs, qt+"."+quoteIdent(t.Name)+" TO "+qt+"."+quoteIdent(old))
			if typ == "VIEW" {
				oldViews = append(oldViews, qt+"."+quoteIdent(old))
			} else {
				olds = append(olds, qt+"."+quoteIdent(old))
			}
		}
		pairs = append(pairs, quoteIdent(tg.staging)+"."+quoteIdent(t.Name)+" TO "+qt+"."+quoteIdent(t.Name))
	}
	if len(pairs) > 0 {
		if _, err := l.ctl.exec("RENAME TABLE " + strings.Join(pairs, ", ")); err != nil {
			return fmt.Errorf("swap the restored tables into %s (nothing was changed): %w", qt, err)
		}
	}
	if len(olds) > 0 {
		if _, err := l.ctl.exec("SET SESSION foreign_key_checks = 0"); err != nil {
			return err
		}
		if _, err := l.ctl.exec("DROP TABLE " + strings.Join(olds, ", ")); err != nil {
			return fmt.Errorf("drop the replaced tables of %s: %w", qt, err)
		}
	}
	if len(oldViews) > 0 {
		if _, err := l.ctl.exec("DROP VIEW " + strings.Join(oldViews, ", ")); err != nil {
			return fmt.Errorf("drop the replaced views of %s: %w", qt, err)
		}
	}
	if _, err := l.ctl.exec("DROP DATABASE " + quoteIdent(tg.staging)); err != nil {
		return fmt.Errorf("drop staging database %s: %w", quoteIdent(tg.staging), err)
	}
	tg.created = false
	return nil
}

func (l *loader) objects(tg *target) error {
	if len(tg.objects) == 0 {
		return nil
	}
	if _, err := l.ctl.exec("USE " + quoteIdent(tg.name)); err != nil {
		return err
	}
	err := l.script(l.ctl, tg.objects, false, nil)
	_ = setupSession(l.ctl)
	if err != nil {
		return fmt.Errorf("tables of %s restored, but its views, triggers, routines or events failed: %w", quoteIdent(tg.name), err)
	}
	return nil
}

// script runs a whole script on one session.
func (l *loader) script(s *session, b []byte, oneLine bool, rows *int64) error {
	sp := NewSplitter(bytes.NewReader(b))
	sp.OneLineInserts = oneLine
	for {
		stmt, err := sp.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		r, err := s.execBytes(stmt)
		if err != nil {
			return fmt.Errorf("%s: %w", firstLine(stmt), err)
		}
		if rows != nil {
			*rows += int64(r.AffectedRows)
		}
		r.Close()
	}
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// dropStaging removes what a failed load created, with a fresh context
// since the load's may be cancelled.
func (l *loader) dropStaging() {
	var s *session
	for _, tg := range l.order {
		if !tg.created {
			continue
		}
		if s == nil {
			var err error
			if s, err = connect(context.Background(), l.cfg.Conn); err != nil {
				l.cfg.Log.Warn("cannot drop staging databases", "error", err)
				return
			}
			defer s.close()
		}
		if _, err := s.exec("DROP DATABASE IF EXISTS " + quoteIdent(tg.staging)); err != nil {
			l.cfg.Log.Warn("cannot drop staging database", "database", tg.staging, "error", err)
		}
	}
}
