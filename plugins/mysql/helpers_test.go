package mysql_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/internal/mariadbtest"
	"github.com/backup-runner/runner/plugins/builtin/config"
	mysqlplugin "github.com/backup-runner/runner/plugins/mysql"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

// One server for this package's tests (a test that kills its server
// starts its own).
var srv *mariadbtest.Server

func TestMain(m *testing.M) { mariadbtest.Main(m, &srv) }

func conn(t testing.TB, s *mariadbtest.Server) *client.Conn {
	t.Helper()
	c, err := client.Connect(s.Addr(), "root", "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func run(t testing.TB, c *client.Conn, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func one(t testing.TB, c *client.Conn, q string) string {
	t.Helper()
	r, err := c.Execute(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if len(r.Values) == 0 {
		return ""
	}
	s, _ := r.GetString(0, 0)
	return s
}

// source starts the plugin through the harness and returns its source.
func source(t *testing.T) *rpc.SourceClient {
	c := sdktest.Start(t, mysqlplugin.Plugin())
	s, err := c.Source(context.Background(), mysqlplugin.TypeName)
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
	return sdk.Instance{TypeName: mysqlplugin.TypeName, Address: "source.mysql.test", Config: v}
}

func strs(ss ...string) cty.Value {
	var vs []cty.Value
	for _, s := range ss {
		vs = append(vs, cty.StringVal(s))
	}
	return cty.ListVal(vs)
}

// memWriter is a host-side CaptureWriter keeping items in memory.
type memWriter struct {
	mu      sync.Mutex
	items   []*memItem
	done    *sdk.CaptureResult
	onWrite func(item string, n int)
}

type memItem struct {
	item   sdk.Item
	buf    bytes.Buffer
	closed bool
	err    error
	w      *memWriter
}

func (m *memItem) Write(p []byte) (int, error) {
	if m.w.onWrite != nil {
		m.w.onWrite(m.item.Name, m.buf.Len())
	}
	return m.buf.Write(p)
}
func (m *memItem) Close() error { m.closed = true; return nil }
func (m *memItem) CloseWithError(err error) error {
	m.closed, m.err = true, err
	return nil
}

func (w *memWriter) Tree(sdk.Item) error { return fmt.Errorf("unexpected tree item") }
func (w *memWriter) Stream(it sdk.Item) (sdk.StreamWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	mi := &memItem{item: it, w: w}
	w.items = append(w.items, mi)
	return mi, nil
}
func (w *memWriter) Done(r sdk.CaptureResult) error { w.done = &r; return nil }

// reader replays the captured items.
func (w *memWriter) reader() sdk.ItemReader { return &memReader{w: w} }

type memReader struct {
	w *memWriter
	i int
}

func (r *memReader) Next() (sdk.Item, io.Reader, error) {
	if r.i >= len(r.w.items) {
		return sdk.Item{}, nil, io.EOF
	}
	it := r.w.items[r.i]
	r.i++
	return it.item, bytes.NewReader(it.buf.Bytes()), nil
}

// passwordFile writes a 0600 password file.
func passwordFile(t testing.TB, pw string, mode os.FileMode) string {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// stripMeta drops item meta, as the repository does not keep it.
func (w *memWriter) stripMeta() {
	for _, it := range w.items {
		it.item.Meta = nil
	}
}
