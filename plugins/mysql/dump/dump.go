package dump

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Config is what Dump needs.
type Config struct {
	Conn   ConnOptions
	Filter Filter
	// Parallel is the number of worker connections (default: CPUs).
	Parallel int
	// ChunkBytes: tables with a single-column integer primary key that are
	// larger than this (by information_schema) are split into parts of
	// about this size (default 64 MiB; <0 never splits).
	ChunkBytes int64
	// StatementBytes bounds one INSERT statement (default 1 MiB; a single
	// larger row gets a statement of its own).
	StatementBytes int
	// NoChecksums skips CHECKSUM TABLE at dump time (loads then verify
	// row counts only).
	NoChecksums bool
	// UsersAndGrants also dumps accounts and their grants.
	UsersAndGrants bool
	Log            *slog.Logger
}

// Result is what a dump produced.
type Result struct {
	Manifest Manifest
	// NonTransactional lists db.table of tables whose engine has no
	// consistent snapshot (MyISAM, Aria, ...).
	NonTransactional []string
	Warnings         []string
	Bytes            int64
}

// Session state of every connection: UTC for TIMESTAMP, zero dates
// allowed, backslash escapes on.
const sessionSQLMode = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

// tableInfo is what a dump knows about a table before reading it.
type tableInfo struct {
	db, name  string
	kind      string // BASE TABLE, VIEW, SEQUENCE, SYSTEM VERSIONED
	engine    string
	dataBytes int64
	cols      []column
	pk        []string
	pkInt     bool
	sum       *Table
}

type column struct {
	name     string
	kind     valueKind
	dataType string
}

type valueKind int

const (
	kindQuoted valueKind = iota
	kindNumber
	kindHex
	kindJSON
)

func kindOf(dataType string) valueKind {
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real", "year":
		return kindNumber
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return kindHex
	case "json":
		return kindJSON
	}
	return kindQuoted
}

// unit is one piece of work: one item.
type unit struct {
	item   Item
	kind   string
	db     *Database
	t      *tableInfo
	part   int
	parts  int
	where  string
	blocks chan []byte
	err    error // set before blocks is closed
	rows   int64
	sum    string
}

const blockSize = 256 << 10

var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, blockSize+64<<10); return &b }}

// Dump writes one consistent snapshot of the selected databases through
// sink. Any error of any worker fails the whole dump with an error naming
// the database and table; the item being written is closed with that
// error.
func Dump(ctx context.Context, cfg Config, sink Sink) (*Result, error) {
	if err := cfg.Filter.Check(); err != nil {
		return nil, err
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = runtime.NumCPU()
	}
	if cfg.ChunkBytes == 0 {
		cfg.ChunkBytes = 64 << 20
	}
	if cfg.StatementBytes <= 0 {
		cfg.StatementBytes = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d := &dumper{cfg: cfg, ctx: ctx, cancel: cancel}
	defer d.closeAll()
	if err := d.prepare(); err != nil {
		return nil, err
	}
	if err := d.plan(); err != nil {
		return nil, err
	}
	if err := d.run(sink); err != nil {
		return nil, err
	}
	return &d.res, nil
}

type dumper struct {
	cfg     Config
	ctx     context.Context
	cancel  context.CancelCauseFunc
	ctl     *session
	workers []*session
	mariadb bool
	res     Result
	tables  []*tableInfo
	units   []*unit
}

func (d *dumper) closeAll() {
	d.ctl.close()
	for _, w := range d.workers {
		w.close()
	}
}

func (d *dumper) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.res.Warnings = append(d.res.Warnings, msg)
	d.cfg.Log.Warn(msg)
}

func setupSession(s *session) error {
	_, err := s.exec("SET NAMES utf8mb4, SESSION time_zone = '+00:00', SESSION sql_mode = '" + sessionSQLMode + "'" +
		", SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600")
	return err
}

// prepare connects, takes the snapshot on every worker and records the
// binlog position of that point.
func (d *dumper) prepare() error {
	var err error
	if d.ctl, err = connect(d.ctx, d.cfg.Conn); err != nil {
		return err
	}
	if err := setupSession(d.ctl); err != nil {
		return err
	}
	if d.res.Manifest.Server, err = d.ctl.one("SELECT VERSION()"); err != nil {
		return err
	}
	d.res.Manifest.Format = Format
	d.mariadb = isMariaDB(d.res.Manifest.Server)
	for range d.cfg.Parallel {
		s, err := connect(d.ctx, d.cfg.Conn)
		if err != nil {
			return err
		}
		d.workers = append(d.workers, s)
		if err := setupSession(s); err != nil {
			return err
		}
		if _, err := s.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
			return err
		}
	}
	return d.snapshot()
}

// snapshot opens one consistent read view on every worker, at one point
// of the binlog. One worker on MariaDB needs no lock: the server reports
// the binlog position of a transaction's snapshot itself. Several workers
// need a brief FLUSH TABLES WITH READ LOCK so that no commit happens
// between their START TRANSACTIONs.
func (d *dumper) snapshot() error {
	m := &d.res.Manifest
	if len(d.workers) == 1 && d.mariadb {
		w := d.workers[0]
		if _, err := w.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return err
		}
		rows, err := w.rows("SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return err
		}
		for _, r := range rows {
			switch r[0] {
			case "Binlog_snapshot_file":
				m.BinlogFile = r[1]
			case "Binlog_snapshot_position":
				m.BinlogPos, _ = strconv.ParseUint(r[1], 10, 64)
			}
		}
		if m.BinlogFile == "" {
			d.warn("the binary log is off: the snapshot records no binlog position")
			return nil
		}
		m.GTID, err = w.one(fmt.Sprintf("SELECT BINLOG_GTID_POS(%s, %d)", quoteString(m.BinlogFile), m.BinlogPos))
		return err
	}
	if _, err := d.ctl.exec("SET SESSION lock_wait_timeout = 60"); err != nil {
		return err
	}
	if _, err := d.ctl.exec("FLUSH TABLES WITH READ LOCK"); err != nil {
		if c := errCode(err); c == mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR || c == mysql.ER_ACCESS_DENIED_ERROR || c == 1045 || c == 1044 {
			return fmt.Errorf("user %q needs RELOAD or FLUSH_TABLES for a consistent snapshot across %d connections (or set parallel = 1 on MariaDB): %v", d.cfg.Conn.User, len(d.workers), err)
		}
		return fmt.Errorf("FLUSH TABLES WITH READ LOCK: %w", err)
	}
	unlocked := false
	defer func() {
		if !unlocked {
			_, _ = d.ctl.exec("UNLOCK TABLES")
		}
	}()
	for _, w := range d.workers {
		if _, err := w.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return err
		}
	}
	status := binlogStatusQuery(m.Server)
	r, err := d.ctl.exec(status)
	if err != nil {
		if c := errCode(err); c == mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR || c == 1045 || c == 1044 {
			return fmt.Errorf("user %q needs REPLICATION CLIENT to record the binlog position: %v", d.cfg.Conn.User, err)
		}
		return fmt.Errorf("%s: %w", status, err)
	}
	if len(r.Values) > 0 {
		m.BinlogFile = valueString(&r.Values[0][0])
		m.BinlogPos, _ = strconv.ParseUint(valueString(&r.Values[0][1]), 10, 64)
	}
	r.Close()
	if m.BinlogFile == "" {
		d.warn("the binary log is off: the snapshot records no binlog position")
	} else if d.mariadb {
		m.GTID, err = d.ctl.one("SELECT @@GLOBAL.gtid_binlog_pos")
	} else {
		m.GTID, err = d.ctl.one("SELECT @@GLOBAL.gtid_executed")
		if errCode(err) == mysql.ER_UNKNOWN_SYSTEM_VARIABLE {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	unlocked = true
	_, err = d.ctl.exec("UNLOCK TABLES")
	return err
}

// isMariaDB tells MariaDB from MySQL by the server's VERSION(), which
// names MariaDB ("10.11.19-MariaDB-0+deb12u1-log") and not MySQL.
func isMariaDB(version string) bool {
	return strings.Contains(strings.ToLower(version), "mariadb")
}

// binlogStatusQuery is the statement that reports the binary log's current
// file and position on a server of this VERSION(): MySQL 8.2 renamed SHOW
// MASTER STATUS to SHOW BINARY LOG STATUS and 8.4 removed the old name;
// MariaDB keeps it (its own new name, SHOW BINLOG STATUS, dates from 10.5).
// A version that cannot be parsed gets the old name, which every server
// before MySQL 8.4 knows.
func binlogStatusQuery(version string) string {
	if isMariaDB(version) {
		return "SHOW MASTER STATUS"
	}
	major, rest, _ := strings.Cut(version, ".")
	maj, err1 := strconv.Atoi(major)
	// The minor number runs to the next dot or suffix ("8.4.3", "8.0.36-0ubuntu0.22.04.1").
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	mnr, err2 := strconv.Atoi(rest[:n])
	if err1 != nil || err2 != nil {
		return "SHOW MASTER STATUS"
	}
	if maj > 8 || (maj == 8 && mnr >= 2) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

func inList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteString(n)
	}
	return strings.Join(q, ",")
}

// plan lists what the snapshot holds and cuts it into units.
func (d *dumper) plan() error {
	m := &d.res.Manifest
	rows, err := d.ctl.rows("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	var dbs []string
	for _, r := range rows {
		have[r[0]] = true
		if d.cfg.Filter.Database(r[0]) {
			m.Databases = append(m.Databases, Database{Name: r[0], Charset: r[1], Collation: r[2], ObjectsItem: objectsItemName(r[0])})
			dbs = append(dbs, r[0])
		}
	}
	for _, want := range d.cfg.Filter.Databases {
		if !have[want] {
			return fmt.Errorf("database %s does not exist on %s (or user %q cannot see it)", quoteIdent(want), d.cfg.Conn.Addr, d.cfg.Conn.User)
		}
	}
	if len(dbs) == 0 {
		return fmt.Errorf("no database to dump on %s", d.cfg.Conn.Addr)
	}
	in := inList(dbs)
	rows, err = d.ctl.rows("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, ''), IFNULL(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (" + in + ") ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return err
	}
	byName := map[string]*tableInfo{}
	excludedExisting := map[string]bool{}
	var views []*tableInfo
	for _, r := range rows {
		t := &tableInfo{db: r[0], name: r[1], kind: r[2], engine: r[3]}
		t.dataBytes, _ = strconv.ParseInt(r[4], 10, 64)
		if !d.cfg.Filter.Table(t.db, t.name) {
			excludedExisting[t.db+"\x00"+t.name] = true
			continue
		}
		switch t.kind {
		case "VIEW":
			views = append(views, t)
			continue
		case "SEQUENCE":
			d.warn("sequence %s.%s is not dumped: sequences are not supported yet", quoteIdent(t.db), quoteIdent(t.name))
			continue
		}
		byName[t.db+"\x00"+t.name] = t
		d.tables = append(d.tables, t)
		switch strings.ToLower(t.engine) {
		case "innodb", "xtradb", "rocksdb", "tokudb":
		default:
			d.res.NonTransactional = append(d.res.NonTransactional, t.db+"."+t.name)
		}
	}
	if len(d.res.NonTransactional) > 0 {
		d.warn("tables without transactions may be inconsistent with the rest of the snapshot: %s", strings.Join(d.res.NonTransactional, ", "))
	}
	// A view that reads a table the filter leaves out would not load.
	if len(views) > 0 {
		vr, err := d.ctl.rows("SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(VIEW_DEFINITION, '') FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN (" + in + ")")
		if err != nil {
			return err
		}
		for _, r := range vr {
			if !d.cfg.Filter.Table(r[0], r[1]) {
				continue
			}
			for _, ref := range tableRefs(r[2]) {
				if excludedExisting[ref[0]+"\x00"+ref[1]] {
					return fmt.Errorf("view %s.%s reads table %s.%s, which the table filter leaves out: exclude the view too, or include the table",
						quoteIdent(r[0]), quoteIdent(r[1]), quoteIdent(ref[0]), quoteIdent(ref[1]))
				}
			}
		}
	}
	if err := d.columns(in, byName); err != nil {
		return err
	}
	// Units: per database its tables, interleaved (interleaveParts), then
	// its objects.
	for i := range m.Databases {
		db := &m.Databases[i]
		first := len(d.units)
		for _, t := range d.tables {
			if t.db != db.Name {
				continue
			}
			if err := d.tableUnits(t); err != nil {
				return err
			}
		}
		interleaveParts(d.units[first:])
		d.units = append(d.units, &unit{kind: KindObjects, db: db, item: Item{Name: db.ObjectsItem, Meta: map[string]string{
			MetaFormat: Format, MetaKind: KindObjects, MetaDatabase: db.Name,
		}}})
	}
	if d.cfg.UsersAndGrants {
		m.UsersItem = usersItemName
		d.units = append(d.units, &unit{kind: KindUsers, item: Item{Name: usersItemName, Meta: map[string]string{MetaFormat: Format, MetaKind: KindUsers}}})
	}
	return nil
}

var qualifiedRef = regexp.MustCompile("`((?:[^`]|``)+)`\\.`((?:[^`]|``)+)`")

// tableRefs finds `db`.`table` references in a view definition.
func tableRefs(def string) [][2]string {
	var out [][2]string
	for _, m := range qualifiedRef.FindAllStringSubmatch(def, -1) {
		out = append(out, [2]string{strings.ReplaceAll(m[1], "``", "`"), strings.ReplaceAll(m[2], "``", "`")})
	}
	return out
}

func (d *dumper) columns(in string, byName map[string]*tableInfo) error {
	rows, err := d.ctl.rows("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (" + in + ") ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION")
	if err != nil {
		return err
	}
	for _, r := range rows {
		t := byName[r[0]+"\x00"+r[1]]
		if t == nil {
			continue
		}
		if strings.Contains(strings.ToUpper(r[4]), "GENERATED") {
			continue // computed by the server; never inserted
		}
		dt := strings.ToLower(r[3])
		t.cols = append(t.cols, column{name: r[2], dataType: dt, kind: kindOf(dt)})
	}
	rows, err = d.ctl.rows("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA IN (" + in + ") ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if t := byName[r[0]+"\x00"+r[1]]; t != nil {
			t.pk = append(t.pk, r[2])
		}
	}
	for _, t := range byName {
		if len(t.pk) == 1 {
			for _, c := range t.cols {
				if c.name == t.pk[0] {
					switch c.dataType {
					case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
						t.pkInt = true
					}
				}
			}
		}
	}
	return nil
}

// interleaveParts orders the parts of a database's tables so that every
// table is spread over the whole dump in proportion to its size: part p
// of n goes where the table is (p - 1/2)/n of the way through, larger
// tables first among equals; each table's parts stay in order, part 1
// (with CREATE TABLE) first. The order is the snapshot's item order, which
// a restore reads in. With the tables one after the other, a restore ended
// with the largest table loading alone; under innodb_autoinc_lock_mode = 1
// (the default) a table with an AUTO_INCREMENT column takes one LOAD DATA
// at a time, so the other connections waited for its table lock with a
// core idle. With the parts interleaved, the other tables load beside it
// (bench/mysql's database, binlog off, runs alternated: 9.4-11.1 s against
// 11.4-12.9 s). The dump itself takes the same time.
func interleaveParts(units []*unit) {
	at := func(u *unit) float64 { return (float64(u.part) - 0.5) / float64(u.parts) }
	slices.SortStableFunc(units, func(a, b *unit) int {
		if c := cmp.Compare(at(a), at(b)); c != 0 {
			return c
		}
		return cmp.Compare(b.t.dataBytes, a.t.dataBytes)
	})
}

// tableUnits cuts a table into parts by primary key range when it is
// large and has a single integer key.
func (d *dumper) tableUnits(t *tableInfo) error {
	parts := 1
	var bounds []int64
	if t.pkInt && d.cfg.ChunkBytes > 0 && t.dataBytes > d.cfg.ChunkBytes {
		want := int((t.dataBytes + d.cfg.ChunkBytes - 1) / d.cfg.ChunkBytes)
		pk := quoteIdent(t.pk[0])
		r, err := d.ctl.rows(fmt.Sprintf("SELECT MIN(%s), MAX(%s) FROM %s.%s", pk, pk, quoteIdent(t.db), quoteIdent(t.name)))
		if err != nil {
			return fmt.Errorf("dump %s.%s: %w", quoteIdent(t.db), quoteIdent(t.name), err)
		}
		lo, err1 := strconv.ParseInt(r[0][0], 10, 64)
		hi, err2 := strconv.ParseInt(r[0][1], 10, 64)
		if err1 == nil && err2 == nil && hi > lo {
			step := (hi - lo) / int64(want)
			if step < 1 {
				step = 1
			}
			for b := lo + step; b <= hi && len(bounds) < want-1; b += step {
				bounds = append(bounds, b)
			}
			parts = len(bounds) + 1
		}
	}
	t.sum = &Table{Database: t.db, Name: t.name, Engine: t.engine}
	for p := 1; p <= parts; p++ {
		where := ""
		if parts > 1 {
			pk := quoteIdent(t.pk[0])
			switch p {
			case 1:
				where = fmt.Sprintf(" WHERE %s < %d", pk, bounds[0])
			case parts:
				where = fmt.Sprintf(" WHERE %s >= %d", pk, bounds[p-2])
			default:
				where = fmt.Sprintf(" WHERE %s >= %d AND %s < %d", pk, bounds[p-2], pk, bounds[p-1])
			}
		}
		name := itemName(t.db, t.name, p)
		t.sum.Items = append(t.sum.Items, name)
		d.units = append(d.units, &unit{kind: KindTable, t: t, part: p, parts: parts, where: where, item: Item{Name: name, Meta: map[string]string{
			MetaFormat: Format, MetaKind: KindTable, MetaDatabase: t.db, MetaTable: t.name,
			MetaPart: strconv.Itoa(p), MetaParts: strconv.Itoa(parts),
		}}})
	}
	return nil
}

// run has the workers produce units in parallel while this goroutine
// writes them to the sink in order. At most len(workers)+1 units are in
// flight, each buffering at most a bounded number of blocks.
func (d *dumper) run(sink Sink) error {
	for _, u := range d.units {
		u.blocks = make(chan []byte, 64)
	}
	window := make(chan struct{}, len(d.workers)+1)
	todo := make(chan *unit)
	go func() {
		defer close(todo)
		for _, u := range d.units {
			select {
			case window <- struct{}{}:
			case <-d.ctx.Done():
				return
			}
			select {
			case todo <- u:
			case <-d.ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range todo {
				u.err = d.produce(w, u)
				if u.err != nil {
					d.cancel(u.err)
				}
				close(u.blocks)
			}
		}()
	}
	err := d.consume(sink, window)
	if err != nil {
		d.cancel(err)
	}
	wg.Wait()
	if err != nil {
		return err
	}
	for _, t := range d.tables {
		d.res.Manifest.Tables = append(d.res.Manifest.Tables, *t.sum)
	}
	// The transactions end here; nothing was written, so a rollback.
	for _, w := range d.workers {
		_, _ = w.exec("ROLLBACK")
	}
	return nil
}

func (d *dumper) consume(sink Sink, window chan struct{}) error {
	for _, u := range d.units {
		w, err := sink(u.item)
		if err != nil {
			return fmt.Errorf("start item %q: %w", u.item.Name, err)
		}
		fail := func(err error) error {
			_ = w.CloseWithError(err)
			return err
		}
	blocks:
		for {
			select {
			case b, ok := <-u.blocks:
				if !ok {
					break blocks
				}
				_, werr := w.Write(b)
				d.res.Bytes += int64(len(b))
				b = b[:0]
				blockPool.Put(&b)
				if werr != nil {
					return fail(werr)
				}
			case <-d.ctx.Done():
				return fail(context.Cause(d.ctx))
			}
		}
		if u.err != nil {
			return fail(u.err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("item %q: %w", u.item.Name, err)
		}
		if u.kind == KindTable {
			u.t.sum.Rows += u.rows
			if u.part == 1 {
				u.t.sum.Checksum = u.sum
			}
		}
		<-window
	}
	return nil
}

// out is a unit's output: bytes gathered into blocks sent to the
// consumer.
type out struct {
	ctx context.Context
	ch  chan []byte
	b   []byte
}

func (o *out) flush() error {
	if len(o.b) == 0 {
		return nil
	}
	select {
	case o.ch <- o.b:
	case <-o.ctx.Done():
		return context.Cause(o.ctx)
	}
	o.b = *(blockPool.Get().(*[]byte))
	return nil
}

func (o *out) maybeFlush() error {
	if len(o.b) >= blockSize {
		return o.flush()
	}
	return nil
}

func (o *out) str(s string) { o.b = append(o.b, s...) }

func (d *dumper) produce(s *session, u *unit) (err error) {
	o := &out{ctx: d.ctx, ch: u.blocks, b: *(blockPool.Get().(*[]byte))}
	switch u.kind {
	case KindTable:
		err = d.produceTable(s, u, o)
		if err != nil {
			err = fmt.Errorf("dump %s.%s: %w", quoteIdent(u.t.db), quoteIdent(u.t.name), err)
		}
	case KindObjects:
		err = d.produceObjects(s, u, o)
		if err != nil {
			err = fmt.Errorf("dump the views, triggers, routines and events of %s: %w", quoteIdent(u.db.Name), err)
		}
	case KindUsers:
		err = d.produceUsers(s, o)
		if err != nil {
			err = fmt.Errorf("dump users and grants: %w", err)
		}
	}
	if err == nil {
		err = o.flush()
	}
	return err
}

// header is the session set-up at the top of every item, so that each
// item loads on its own with the mariadb client.
func header(o *out, what string) {
	o.str("-- runner mysql dump (" + Format + "): " + strings.ReplaceAll(what, "\n", " ") + "\n")
	o.str("SET NAMES utf8mb4;\n")
	o.str("SET SESSION sql_mode = '" + sessionSQLMode + "', SESSION time_zone = '+00:00', SESSION foreign_key_checks = 0, SESSION unique_checks = 0;\n")
}

func (d *dumper) produceTable(s *session, u *unit, o *out) error {
	t := u.t
	full := quoteIdent(t.db) + "." + quoteIdent(t.name)
	header(o, fmt.Sprintf("table %s part %d of %d", full, u.part, u.parts))
	if u.part == 1 {
		if _, err := s.exec("SET NAMES utf8mb4"); err != nil {
			return err
		}
		r, err := s.rows("SHOW CREATE TABLE " + full)
		if err != nil {
			return err
		}
		if len(r) == 0 || len(r[0]) < 2 {
			return errors.New("SHOW CREATE TABLE returned nothing")
		}
		o.str(r[0][1])
		o.str(";\n")
	}
	if len(t.cols) == 0 {
		return nil
	}
	// Rows travel as the bytes stored: no conversion on the way out, and
	// a binary connection on the way in.
	if _, err := s.exec("SET character_set_results = NULL"); err != nil {
		return err
	}
	o.str("SET NAMES binary;\n")
	var sel, ins strings.Builder
	sel.WriteString("SELECT ")
	ins.WriteString("INSERT INTO " + quoteIdent(t.name) + " (")
	for i, c := range t.cols {
		if i > 0 {
			sel.WriteByte(',')
			ins.WriteByte(',')
		}
		sel.WriteString(quoteIdent(c.name))
		ins.WriteString(quoteIdent(c.name))
	}
	sel.WriteString(" FROM " + full + u.where)
	ins.WriteString(") VALUES ")
	prefix := ins.String()
	limit := d.cfg.StatementBytes
	stmtLen := 0 // bytes of the open INSERT, 0 when none is open
	var result mysql.Result
	cols := t.cols
	err := s.c.ExecuteSelectStreaming(sel.String(), &result, func(row []mysql.FieldValue) error {
		if stmtLen == 0 {
			o.str(prefix)
			stmtLen = len(prefix)
			o.b = append(o.b, '(')
		} else {
			o.b = append(o.b, ',', '(')
		}
		start := len(o.b)
		for i := range row {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			v := &row[i]
			switch v.Type {
			case mysql.FieldValueTypeNull:
				o.b = append(o.b, "NULL"...)
			case mysql.FieldValueTypeSigned:
				o.b = strconv.AppendInt(o.b, v.AsInt64(), 10)
			case mysql.FieldValueTypeUnsigned:
				o.b = strconv.AppendUint(o.b, v.AsUint64(), 10)
			case mysql.FieldValueTypeFloat:
				o.b = strconv.AppendFloat(o.b, v.AsFloat64(), 'g', -1, 64)
			default:
				raw := v.AsString()
				switch cols[i].kind {
				case kindNumber:
					o.b = append(o.b, raw...)
				case kindHex:
					o.b = appendHex(o.b, raw)
				case kindJSON:
					o.b = append(o.b, "_utf8mb4"...)
					o.b = appendQuoted(o.b, raw)
				default:
					o.b = appendQuoted(o.b, raw)
				}
			}
		}
		o.b = append(o.b, ')')
		stmtLen += len(o.b) - start + 2
		u.rows++
		if stmtLen >= limit {
			o.b = append(o.b, ";\n"...)
			stmtLen = 0
		}
		return o.maybeFlush()
	}, nil)
	if err != nil {
		if cause := context.Cause(d.ctx); cause != nil {
			return cause
		}
		return s.queryError(err)
	}
	if len(result.Fields) != len(cols) {
		return fmt.Errorf("the server returned %d columns, expected %d: the table changed during the dump", len(result.Fields), len(cols))
	}
	if stmtLen > 0 {
		o.b = append(o.b, ";\n"...)
	}
	if u.part == 1 && !d.cfg.NoChecksums {
		r, err := s.rows("CHECKSUM TABLE " + full)
		if err != nil {
			return err
		}
		if len(r) > 0 && len(r[0]) > 1 {
			u.sum = r[0][1]
		}
	}
	return nil
}

// produceObjects writes a database's views (in dependency order),
// triggers, routines and events, each with the session settings it was
// created under.
func (d *dumper) produceObjects(s *session, u *unit, o *out) error {
	db := u.db.Name
	qdb := quoteIdent(db)
	header(o, "views, triggers, routines and events of "+qdb)
	if _, err := s.exec("SET NAMES utf8mb4"); err != nil {
		return err
	}
	// Views.
	rows, err := s.rows("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = " + quoteString(db) + " ORDER BY TABLE_NAME")
	if err != nil {
		return err
	}
	type view struct{ name, create, cs, coll string }
	var views []view
	for _, r := range rows {
		if !d.cfg.Filter.Table(db, r[0]) {
			continue
		}
		c, err := s.rows("SHOW CREATE VIEW " + qdb + "." + quoteIdent(r[0]))
		if err != nil {
			return fmt.Errorf("view %s: %w", quoteIdent(r[0]), err)
		}
		if len(c) == 0 || len(c[0]) < 4 {
			return fmt.Errorf("view %s: SHOW CREATE VIEW returned nothing", quoteIdent(r[0]))
		}
		// Unqualified, so the view loads into whatever database the
		// restore names.
		create := strings.ReplaceAll(c[0][1], qdb+".", "")
		views = append(views, view{r[0], create, c[0][2], c[0][3]})
	}
	// Dependency order: a view after the views it reads.
	done := map[string]bool{}
	var ordered []view
	var visit func(v view, depth int)
	byName := map[string]view{}
	for _, v := range views {
		byName[v.name] = v
	}
	visit = func(v view, depth int) {
		if done[v.name] || depth > len(views) {
			return
		}
		done[v.name] = true
		for _, other := range views {
			if other.name != v.name && strings.Contains(v.create, quoteIdent(other.name)) {
				visit(other, depth+1)
			}
		}
		ordered = append(ordered, v)
	}
	for _, v := range views {
		visit(v, 0)
	}
	for _, v := range ordered {
		o.str(fmt.Sprintf("SET NAMES %s COLLATE %s;\n", v.cs, v.coll))
		o.str("DROP VIEW IF EXISTS " + quoteIdent(v.name) + ";\n")
		o.str(v.create + ";\n")
	}
	// Triggers of the dumped tables, rebuilt from information_schema so
	// that neither the trigger nor its table names the database.
	trg, err := s.exec("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = " + quoteString(db) + " ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER")
	if err != nil {
		return err
	}
	for i := range trg.Values {
		r := make([]string, len(trg.Values[i]))
		for j := range r {
			r[j] = valueString(&trg.Values[i][j])
		}
		if !d.cfg.Filter.Table(db, r[1]) {
			continue
		}
		create := fmt.Sprintf("CREATE DEFINER=%s TRIGGER %s %s %s ON %s FOR EACH ROW %s", quoteAccount(r[5]), quoteIdent(r[0]), r[2], r[3], quoteIdent(r[1]), r[4])
		writeRoutine(o, "TRIGGER", r[0], create, r[6], r[7], r[8], "")
	}
	trg.Close()
	rows, err = s.rows("SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = " + quoteString(db) + " AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY ROUTINE_TYPE, ROUTINE_NAME")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := d.showCreate(s, o, r[0], qdb, r[1]); err != nil {
			return err
		}
	}
	rows, err = s.rows("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = " + quoteString(db) + " ORDER BY EVENT_NAME")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := d.showCreate(s, o, "EVENT", qdb, r[0]); err != nil {
			return err
		}
	}
	o.str("SET NAMES utf8mb4;\nSET SESSION sql_mode = '" + sessionSQLMode + "', SESSION time_zone = '+00:00';\n")
	return nil
}

// showCreate writes one trigger, routine or event with its sql_mode,
// character set and time zone, between DELIMITER lines.
func (d *dumper) showCreate(s *session, o *out, what, qdb, name string) error {
	q := fmt.Sprintf("SHOW CREATE %s %s.%s", what, qdb, quoteIdent(name))
	r, err := s.exec(q)
	if err != nil {
		return fmt.Errorf("%s %s: %w", strings.ToLower(what), quoteIdent(name), err)
	}
	defer r.Close()
	if len(r.Values) == 0 {
		return fmt.Errorf("%s %s: %s returned nothing", strings.ToLower(what), quoteIdent(name), q)
	}
	get := func(col string) (string, bool) {
		i, ok := r.FieldNames[col]
		if !ok {
			return "", false
		}
		v := &r.Values[0][i]
		return valueString(v), v.Type != mysql.FieldValueTypeNull
	}
	createCol := map[string]string{"PROCEDURE": "Create Procedure", "FUNCTION": "Create Function", "EVENT": "Create Event"}[what]
	create, ok := get(createCol)
	if !ok || create == "" {
		return fmt.Errorf("%s %s: the server hides its definition from user %q (it needs to own it, or SELECT on mysql.proc / the TRIGGER or EVENT privilege)",
			strings.ToLower(what), quoteIdent(name), d.cfg.Conn.User)
	}
	mode, _ := get("sql_mode")
	cs, _ := get("character_set_client")
	coll, _ := get("collation_connection")
	tz, _ := get("time_zone")
	writeRoutine(o, what, name, create, mode, cs, coll, tz)
	return nil
}

// writeRoutine writes a trigger, routine or event with its session
// settings, between DELIMITER lines.
func writeRoutine(o *out, what, name, create, mode, cs, coll, tz string) {
	o.str(fmt.Sprintf("SET SESSION sql_mode = %s;\n", quoteString(mode)))
	if tz != "" {
		o.str(fmt.Sprintf("SET SESSION time_zone = %s;\n", quoteString(tz)))
	}
	if cs != "" && coll != "" {
		o.str(fmt.Sprintf("SET NAMES %s COLLATE %s;\n", cs, coll))
	}
	o.str(fmt.Sprintf("DROP %s IF EXISTS %s;\n", what, quoteIdent(name)))
	delim := ";;"
	for _, cand := range []string{";;", "$$", "//", ";;;;", "$$$$"} {
		if !strings.Contains(create, cand) {
			delim = cand
			break
		}
	}
	o.str("DELIMITER " + delim + "\n" + create + delim + "\nDELIMITER ;\n")
	if tz != "" {
		o.str("SET SESSION time_zone = '+00:00';\n")
	}
}

// quoteAccount quotes user@host as `user`@`host`.
func quoteAccount(a string) string {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return quoteIdent(a)
	}
	return quoteIdent(a[:i]) + "@" + quoteIdent(a[i+1:])
}

// systemUsers are accounts a server creates itself.
var systemUsers = map[string]bool{"root": true, "mariadb.sys": true, "mysql.sys": true, "mysql.session": true, "mysql.infoschema": true, "": true, "PUBLIC": true}

func (d *dumper) produceUsers(s *session, o *out) error {
	header(o, "users and grants")
	if _, err := s.exec("SET NAMES utf8mb4"); err != nil {
		return err
	}
	rows, err := s.rows("SELECT User, Host FROM mysql.user ORDER BY User, Host")
	if err != nil {
		return fmt.Errorf("list accounts (needs SELECT on mysql.user): %w", err)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	for _, r := range rows {
		if systemUsers[r[0]] {
			continue
		}
		acct := quoteString(r[0]) + "@" + quoteString(r[1])
		c, err := s.one("SHOW CREATE USER " + acct)
		if err != nil {
			return fmt.Errorf("account %s: %w", acct, err)
		}
		if rest, ok := strings.CutPrefix(c, "CREATE USER "); ok {
			c = "CREATE USER IF NOT EXISTS " + rest
		}
		o.str(c + ";\n")
		grants, err := s.rows("SHOW GRANTS FOR " + acct)
		if err != nil {
			return fmt.Errorf("account %s: %w", acct, err)
		}
		for _, g := range grants {
			o.str(g[0] + ";\n")
		}
	}
	return nil
}
