package wordpress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/backup-runner/runner/plugins/mysql/dump"
)

// dbConn is a connection for the source's own small queries (which
// tables the site has, siteurl); dumps and loads go through package dump.
type dbConn struct {
	c    *client.Conn
	stop func() bool
}

func connectDB(ctx context.Context, o dump.ConnOptions) (*dbConn, error) {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c, err := client.ConnectWithContext(ctx, o.Addr, o.User, o.Password, "", timeout)
	if err != nil {
		return nil, connectError(o, err)
	}
	nc := c.Conn.Conn
	return &dbConn{c: c, stop: context.AfterFunc(ctx, func() { _ = nc.Close() })}, nil
}

func (d *dbConn) close() {
	if d == nil {
		return
	}
	d.stop()
	_ = d.c.Close()
}

func (d *dbConn) rows(q string) ([][]string, error) {
	r, err := d.c.Execute(q)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for i := range r.Values {
		row := make([]string, len(r.Values[i]))
		for j := range r.Values[i] {
			row[j], _ = r.GetString(i, j)
		}
		out = append(out, row)
	}
	return out, nil
}

// connectError says why a server could not be reached, without the
// password.
func connectError(o dump.ConnOptions, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_DBACCESS_DENIED_ERROR:
			return fmt.Errorf("MySQL server at %s refused user %q: access denied (wrong user or password?)", o.Addr, o.User)
		}
		return fmt.Errorf("connect to MySQL server at %s as %q: %s", o.Addr, o.User, me.Message)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach MySQL server at %s: connection refused (is it running, and is DB_HOST right?)", o.Addr)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cannot reach MySQL server at %s: no such socket", o.Addr)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("cannot reach MySQL server at %s: timed out", o.Addr)
	}
	return fmt.Errorf("cannot reach MySQL server at %s: %v", o.Addr, err)
}

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`).Replace(s) + "'"
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// tablesOf lists the tables and views of database db.
func (d *dbConn) tablesOf(db string) ([]string, error) {
	rows, err := d.rows("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = " + quoteString(db) + " ORDER BY TABLE_NAME")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, r[0])
	}
	return out, nil
}

// option reads one row of the site's options table ("" when absent).
func (d *dbConn) option(db, prefix, name string) (string, error) {
	rows, err := d.rows(fmt.Sprintf("SELECT option_value FROM %s.%s WHERE option_name = %s", quoteIdent(db), quoteIdent(prefix+"options"), quoteString(name)))
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", nil
	}
	return rows[0][0], nil
}

// multisiteTable matches the tables of a multisite network's sub-sites:
// PREFIX<blog id>_name.
var multisiteTable = regexp.MustCompile(`^[0-9]+_`)

// scope decides what of the database belongs to the site. When every
// table starts with the site's prefix (or the database is empty), the
// whole database is the site's: the filter selects the database, with
// its views, triggers and routines. Otherwise the database is shared and
// the filter selects the tables with the site's prefix, except those of
// another WordPress install whose longer prefix starts with this one
// (prefix wp_ and a second site with wp_shop_: a prefix Q is another
// site's when Q+"options" and Q+"posts" exist; PREFIX<n>_ tables of a
// multisite network stay the site's).
func scope(db, prefix string, tables []string) (f dump.Filter, shared bool) {
	f.Databases = []string{db}
	var others []string
	for _, t := range tables {
		if !strings.HasPrefix(t, prefix) {
			shared = true
			continue
		}
		if !strings.HasSuffix(t, "options") {
			continue
		}
		q := strings.TrimSuffix(t, "options")
		if len(q) <= len(prefix) || multisiteTable.MatchString(q[len(prefix):]) || !slices.Contains(tables, q+"posts") {
			continue
		}
		others = append(others, q)
	}
	if !shared && len(others) == 0 {
		return f, false
	}
	qdb := strings.ReplaceAll(globEscape(db), ".", `\.`)
	f.IncludeTables = []string{qdb + "." + globEscape(prefix) + "*"}
	for _, q := range others {
		f.ExcludeTables = append(f.ExcludeTables, qdb+"."+globEscape(q)+"*")
	}
	return f, true
}

// globEscape quotes the glob characters of package dump's patterns.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(s)
}
