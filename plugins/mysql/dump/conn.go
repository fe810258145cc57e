// Package dump is the engine of the mysql source: consistent, parallel
// dumps of MariaDB and MySQL databases into per-table SQL items, and
// parallel, verified loads of such items back into a server. The mysql
// plugin and the sources built on it (wordpress, seafile) call Dump and
// Load with a connection, a filter and an item sink or source.
//
// The format and the consistency method are described in docs/MYSQL.md.
package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// ConnOptions says how to reach a server.
type ConnOptions struct {
	// Addr is host:port for TCP, or the absolute path of a Unix socket.
	Addr     string
	User     string
	Password string // never printed
	// ConnectTimeout bounds dialing and the handshake (default 10s).
	ConnectTimeout time.Duration
}

// ParseDSN reads a go-sql-driver style address: user[:password]@tcp(host:port)/
// or user@unix(/path/to/socket)/ (the database part, if any, is ignored:
// the filter selects databases). hasPassword reports an inline password,
// which the plugin refuses: secrets come from files.
func ParseDSN(dsn string) (o ConnOptions, hasPassword bool, err error) {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return o, false, fmt.Errorf("dsn %q: want user@tcp(host:port)/ or user@unix(/path/to/socket)/", redactDSN(dsn))
	}
	cred, rest := dsn[:at], dsn[at+1:]
	if i := strings.IndexByte(cred, ':'); i >= 0 {
		cred, hasPassword = cred[:i], true
	}
	if cred == "" {
		return o, hasPassword, fmt.Errorf("dsn %q names no user", redactDSN(dsn))
	}
	o.User = cred
	if i := strings.IndexByte(rest, '/'); i >= 0 && strings.HasSuffix(rest[:i], ")") {
		rest = rest[:i]
	} else if i := strings.LastIndex(rest, ")/"); i >= 0 {
		rest = rest[:i+1]
	}
	switch {
	case strings.HasPrefix(rest, "tcp(") && strings.HasSuffix(rest, ")"):
		addr := rest[4 : len(rest)-1]
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			host, port = addr, "3306"
		}
		if host == "" {
			return o, hasPassword, fmt.Errorf("dsn %q names no host", redactDSN(dsn))
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return o, hasPassword, fmt.Errorf("dsn %q: bad port %q", redactDSN(dsn), port)
		}
		o.Addr = net.JoinHostPort(host, port)
	case strings.HasPrefix(rest, "unix(") && strings.HasSuffix(rest, ")"):
		o.Addr = rest[5 : len(rest)-1]
		if !strings.HasPrefix(o.Addr, "/") {
			return o, hasPassword, fmt.Errorf("dsn %q: the socket path must be absolute", redactDSN(dsn))
		}
	default:
		return o, hasPassword, fmt.Errorf("dsn %q: want user@tcp(host:port)/ or user@unix(/path/to/socket)/", redactDSN(dsn))
	}
	return o, hasPassword, nil
}

// redactDSN hides an inline password.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	if i := strings.IndexByte(dsn[:at], ':'); i >= 0 {
		return dsn[:i] + ":***" + dsn[at:]
	}
	return dsn
}

// session is one connection. Its queries are cut short when its context
// ends: the connection is closed under them.
type session struct {
	c    *client.Conn
	o    ConnOptions
	stop func() bool
	db   string // the database of the last USE, when tracked
}

// connect opens a session.
func connect(ctx context.Context, o ConnOptions, opts ...client.Option) (*session, error) {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c, err := client.ConnectWithContext(ctx, o.Addr, o.User, o.Password, "", timeout, opts...)
	if err != nil {
		return nil, connectError(o, err)
	}
	s := &session{c: c, o: o}
	// The net.Conn itself: closing it is safe while another goroutine
	// reads, which client.Conn.Close is not.
	nc := c.Conn.Conn
	s.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	return s, nil
}

// connectError turns a failed connection into a message an operator can
// act on, without the password.
func connectError(o ConnOptions, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_DBACCESS_DENIED_ERROR:
			return fmt.Errorf("MySQL server at %s refused user %q: access denied (wrong user or password?): %s", o.Addr, o.User, me.Message)
		}
		return fmt.Errorf("connect to MySQL server at %s as %q: %s", o.Addr, o.User, me.Message)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach MySQL server at %s: connection refused (is it running, and is the address right?)", o.Addr)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cannot reach MySQL server at %s: no such socket", o.Addr)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("cannot reach MySQL server at %s: timed out", o.Addr)
	}
	return fmt.Errorf("cannot reach MySQL server at %s: %v", o.Addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *session) close() {
	if s == nil || s.c == nil {
		return
	}
	s.stop()
	_ = s.c.Close()
}

// exec runs one statement.
func (s *session) exec(q string) (*mysql.Result, error) {
	r, err := s.c.Execute(q)
	if err != nil {
		return nil, s.queryError(err)
	}
	return r, nil
}

// execBytes runs one statement held in b without copying it.
func (s *session) execBytes(b []byte) (*mysql.Result, error) {
	return s.exec(unsafe.String(unsafe.SliceData(b), len(b)))
}

// withLocalInfile lets the connection send LOAD DATA LOCAL INFILE data.
// go-mysql never reads a local file on the server's request: the data is
// only ever what session.loadBatch hands it.
func withLocalInfile(c *client.Conn) error { return c.SetCapability(mysql.CLIENT_LOCAL_FILES) }

// queryError names a lost connection as such.
func (s *session) queryError(err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "connection was bad") {
		return fmt.Errorf("lost connection to MySQL server at %s: %w", s.o.Addr, err)
	}
	return err
}

// rows runs a query and returns its rows as strings (NULL as the empty
// string, with null[i][j] set).
func (s *session) rows(q string) ([][]string, error) {
	r, err := s.exec(q)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := make([][]string, 0, len(r.Values))
	for _, row := range r.Values {
		rec := make([]string, len(row))
		for i := range row {
			rec[i] = valueString(&row[i])
		}
		out = append(out, rec)
	}
	return out, nil
}

// rowsNull is rows that also says which values are NULL.
func (s *session) rowsNull(q string) ([][]string, [][]bool, error) {
	r, err := s.exec(q)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	out := make([][]string, 0, len(r.Values))
	nulls := make([][]bool, 0, len(r.Values))
	for _, row := range r.Values {
		rec := make([]string, len(row))
		nl := make([]bool, len(row))
		for i := range row {
			rec[i] = valueString(&row[i])
			nl[i] = row[i].Type == mysql.FieldValueTypeNull
		}
		out = append(out, rec)
		nulls = append(nulls, nl)
	}
	return out, nulls, nil
}

func valueString(v *mysql.FieldValue) string {
	switch v.Type {
	case mysql.FieldValueTypeNull:
		return ""
	case mysql.FieldValueTypeUnsigned:
		return strconv.FormatUint(v.AsUint64(), 10)
	case mysql.FieldValueTypeSigned:
		return strconv.FormatInt(v.AsInt64(), 10)
	case mysql.FieldValueTypeFloat:
		return strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	}
	return string(v.AsString())
}

// one returns the single value of a query ("" when it returns no row).
func (s *session) one(q string) (string, error) {
	rows, err := s.rows(q)
	if err != nil || len(rows) == 0 || len(rows[0]) == 0 {
		return "", err
	}
	return rows[0][0], nil
}

// errCode is the server error code of err, or 0.
func errCode(err error) uint16 {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code
	}
	return 0
}

// quoteIdent quotes a name with backticks.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// quoteString quotes a string literal for the server.
func quoteString(s string) string {
	return string(appendQuoted(make([]byte, 0, len(s)+2), []byte(s)))
}
