package dump

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/backup-runner/runner/internal/mariadbtest"
)

// One server for the package's tests; each test uses its own databases.
var srv *mariadbtest.Server

func TestMain(m *testing.M) { mariadbtest.Main(m, &srv) }

func rootConn() ConnOptions { return ConnOptions{Addr: srv.Addr(), User: "root"} }

// sqlExec runs statements as root, failing the test on an error.
func sqlExec(t testing.TB, stmts ...string) {
	t.Helper()
	s, err := connect(context.Background(), rootConn())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, q := range stmts {
		if _, err := s.exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func sqlRows(t testing.TB, q string) [][]string {
	t.Helper()
	s, err := connect(context.Background(), rootConn())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := s.exec("SET NAMES utf8mb4, time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	r, err := s.rows(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// memSink keeps items in memory, in order.
type memSink struct {
	mu    sync.Mutex
	items []*memItem
}

type memItem struct {
	Item
	buf    bytes.Buffer
	closed bool
	err    error
}

func (m *memItem) Write(p []byte) (int, error) { return m.buf.Write(p) }
func (m *memItem) Close() error                { m.closed = true; return nil }
func (m *memItem) CloseWithError(err error) error {
	m.closed, m.err = true, err
	return nil
}

func (m *memSink) sink(it Item) (ItemWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mi := &memItem{Item: it}
	m.items = append(m.items, mi)
	return mi, nil
}

func (m *memSink) names() []string {
	var out []string
	for _, it := range m.items {
		out = append(out, it.Name)
	}
	return out
}

// source replays the items as Load reads them.
func (m *memSink) source() LoadSource {
	i := 0
	return func() (Item, io.Reader, error) {
		if i >= len(m.items) {
			return Item{}, nil, io.EOF
		}
		it := m.items[i]
		i++
		return it.Item, bytes.NewReader(it.buf.Bytes()), nil
	}
}

// tableDump is a table's content as sorted text, for comparisons.
func tableDump(t testing.TB, db, table string) string {
	t.Helper()
	s, err := connect(context.Background(), rootConn())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := s.exec("SET NAMES utf8mb4, time_zone = '+00:00', character_set_results = NULL"); err != nil {
		t.Fatal(err)
	}
	rows, nulls, err := s.rowsNull(fmt.Sprintf("SELECT * FROM %s.%s", quoteIdent(db), quoteIdent(table)))
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		for j := range r {
			if nulls[i][j] {
				r[j] = "<NULL>"
			}
		}
		lines[i] = strings.Join(r, "\x1f")
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
