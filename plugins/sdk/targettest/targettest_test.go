package targettest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/targettest"
)

// memSession is a small in-memory target used to test the suite itself:
// correct by default, and broken in one way when asked, to show that the
// suite notices.
type memSession struct {
	broken string

	mu      sync.Mutex
	objects map[string]memObject
}

type memObject struct {
	data []byte
	mod  time.Time
}

func newMem(broken string) *memSession {
	return &memSession{broken: broken, objects: map[string]memObject{}}
}

func (m *memSession) LocalRoot() string { return "" }

func validName(name string) error {
	if m := name; m == "" || strings.HasPrefix(m, "/") {
		return fmt.Errorf("bad name %q", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("bad name %q", name)
		}
	}
	return nil
}

func (m *memSession) check(name string) error {
	if m.broken == "accepts-bad-names" {
		return nil
	}
	return validName(name)
}

func (m *memSession) store(name string, data []byte) {
	m.mu.Lock()
	m.objects[name] = memObject{data: data, mod: time.Now()}
	m.mu.Unlock()
}

func (m *memSession) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := m.check(name); err != nil {
		return err
	}
	var buf bytes.Buffer
	p := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(p)
		buf.Write(p[:n])
		if m.broken == "visible-while-writing" {
			m.store(name, bytes.Clone(buf.Bytes()))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if m.broken == "keeps-partial" {
				m.store(name, buf.Bytes())
			}
			return err
		}
	}
	if size >= 0 && int64(buf.Len()) != size {
		return fmt.Errorf("got %d bytes, expected %d", buf.Len(), size)
	}
	m.store(name, buf.Bytes())
	return nil
}

func (m *memSession) notFound(name string) error {
	if m.broken == "plain-not-found" {
		return fmt.Errorf("%s: no such object", name)
	}
	return fmt.Errorf("%s: %w", name, sdk.ErrNotFound)
}

func (m *memSession) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := m.check(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	o, ok := m.objects[name]
	m.mu.Unlock()
	if !ok {
		return nil, m.notFound(name)
	}
	size := int64(len(o.data))
	end := size
	if length > 0 {
		end = offset + length
	}
	if offset < 0 || length < 0 || offset > size || end > size {
		if m.broken != "short-ranges" || offset < 0 || length < 0 {
			return nil, fmt.Errorf("range %d+%d beyond the end (%d)", offset, length, size)
		}
		end = min(end, size)
		offset = min(offset, size)
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), nil
}

func (m *memSession) List(ctx context.Context, prefix string, fn func(sdk.ObjectInfo) error) error {
	if prefix != "" && m.broken != "accepts-bad-names" {
		if err := validName(strings.TrimSuffix(prefix, "/")); err != nil {
			return err
		}
	}
	m.mu.Lock()
	var infos []sdk.ObjectInfo
	for name, o := range m.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, sdk.ObjectInfo{Name: name, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, oi := range infos {
		if err := fn(oi); err != nil && m.broken != "ignores-callback-error" {
			return err
		}
	}
	return nil
}

func (m *memSession) Delete(ctx context.Context, name string) error {
	if err := m.check(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[name]; !ok {
		if m.broken == "idempotent-delete" {
			return nil
		}
		return m.notFound(name)
	}
	delete(m.objects, name)
	return nil
}

func (m *memSession) Stat(ctx context.Context, name string) (sdk.ObjectInfo, error) {
	if err := m.check(name); err != nil {
		return sdk.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return sdk.ObjectInfo{}, m.notFound(name)
	}
	return sdk.ObjectInfo{Name: name, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

func (m *memSession) Usage(ctx context.Context) (sdk.Usage, error) {
	if m.broken == "bad-usage" {
		return sdk.Usage{TotalBytes: 10, FreeBytes: 20, UsedBytes: -1}, nil
	}
	return sdk.Usage{TotalBytes: -1, FreeBytes: -1, UsedBytes: -1}, nil
}

func (m *memSession) Release(ctx context.Context) error { return nil }

// TestReferenceTarget: the in-memory target passes the suite.
func TestReferenceTarget(t *testing.T) {
	targettest.Run(t, func(t *testing.T) sdk.Session { return newMem("") })
}

// brokenEnv selects the broken variant TestBrokenTarget runs.
const brokenEnv = "TARGETTEST_BROKEN"

// TestBrokenTarget runs the suite on a broken variant; it is run (and
// expected to fail) by TestSuiteCatchesBrokenTargets in a child process.
func TestBrokenTarget(t *testing.T) {
	broken := os.Getenv(brokenEnv)
	if broken == "" {
		t.Skip("run by TestSuiteCatchesBrokenTargets")
	}
	targettest.Run(t, func(t *testing.T) sdk.Session { return newMem(broken) })
}

// TestSuiteCatchesBrokenTargets shows that each broken variant fails the
// suite, in the subtest that covers its part of the contract.
func TestSuiteCatchesBrokenTargets(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child")
	}
	for _, tc := range []struct {
		broken  string
		subtest string // the part of the contract that catches it
		want    string // in the output
	}{
		{"visible-while-writing", "NoPartialObjectDuringPut", "Stat of an object whose Put is in progress"},
		{"keeps-partial", "InterruptedPut", "Stat after a Put with a reader failing midway"},
		{"short-ranges", "GetRange", "Get(obj, 1000, 1) of a 1000-byte object (returned 0 bytes) succeeded"},
		{"plain-not-found", "DeleteThenNotFound", "want one matching sdk.ErrNotFound"},
		{"idempotent-delete", "DeleteThenNotFound", "Delete(data/ab/cdef): got error <nil>, want one matching sdk.ErrNotFound"},
		{"accepts-bad-names", "InvalidNames", `Put("../x") succeeded; it must be refused`},
		{"ignores-callback-error", "ListStopsOnCallbackError", "want the callback's error after 1 call"},
		{"bad-usage", "Usage", "more free than total"},
	} {
		t.Run(tc.broken, func(t *testing.T) {
			// Only the subtest that should catch it, to keep this quick.
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenTarget$/^"+tc.subtest+"$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.broken)
			out, err := cmd.CombinedOutput()
			broken, want := tc.broken, "--- FAIL: TestBrokenTarget/"+tc.subtest
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the suite passed a target that is %s (%v):\n%s", broken, err, out)
			}
			for _, w := range []string{want, tc.want} {
				if !strings.Contains(string(out), w) {
					t.Fatalf("want %q in the output:\n%s", w, out)
				}
			}
		})
	}
}
