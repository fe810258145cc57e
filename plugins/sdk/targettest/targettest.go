// Package targettest is a conformance suite for target plugins: it checks
// that a session's object verbs keep the contract the repository relies
// on. Every target, built-in or external, runs it in its own tests, on a
// session of its own making, in-process and, through sdktest, over the
// real gRPC path:
//
//	func TestConformance(t *testing.T) {
//		targettest.Run(t, func(t *testing.T) sdk.Session {
//			s, err := (&MyTarget{}).Prepare(t.Context(), instanceFor(t.TempDir()), false)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// # The contract
//
// Names are slash-separated relative paths ("config", "data/ab/cdef")
// without empty, "." or ".." segments; the empty name, absolute names,
// "a//b", "../x" and the like are refused by every verb with an error that
// does not match sdk.ErrNotFound (a bad name is not a missing object).
//
// Put stores an object whole. A Put of an existing name replaces it
// atomically: a concurrent or later reader sees the old object or the new
// one, never a mix or a part. A Put that fails (its reader returns an
// error, the context is cancelled, or the body is shorter or longer than a
// size >= 0 announced) returns an error and leaves no object under the
// name (or the old one, untouched), and nothing a List shows. size -1
// means unknown.
//
// Get(name, offset, length) returns length bytes from offset; length 0
// means to the end. offset == size with length 0 gives an empty object.
// A range that reaches past the end (offset > size, or offset+length >
// size) is an error that does not match sdk.ErrNotFound, reported by Get
// or at the latest by the reader before it returns io.EOF: never silently
// shorter data, since a short read of a pack means the repository's idea
// of it is wrong. Negative offsets and lengths are errors.
//
// List(prefix, fn) calls fn once for every stored object whose name
// starts with prefix (a plain string prefix: "data/c" matches
// "data/cd/ef"; "" matches everything), in no particular order, with its
// size; temporary files of a Put in progress are never listed. An error
// from fn stops the listing and is returned so that errors.Is finds it.
//
// Get, Stat and Delete of a missing object return an error matching
// sdk.ErrNotFound (Delete is not silently idempotent: the caller learns
// that the object was already gone).
//
// Usage reports sizes in bytes, -1 for unknown; when both are known, free
// space is at most the total.
package targettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backup-runner/runner/plugins/sdk"
)

// timeout bounds each subtest's calls, so that a target that hangs fails
// the test instead of stalling it until go test's own timeout.
const timeout = 2 * time.Minute

// largeSize is the size of the objects the suite uses to catch partial
// writes: several RPC messages (256 KiB each) and many io.Copy buffers,
// and not a multiple of either.
const largeSize = 2<<20 + 12345

// Run runs the conformance suite, one subtest per part of the contract.
// newSession is called once in each subtest and must return a writable
// session on an empty repository (a fresh directory, bucket prefix, ...);
// the suite releases it at the end of the subtest and fails if Release
// fails. Objects the suite stores are at most a few MiB.
func Run(t *testing.T, newSession func(t *testing.T) sdk.Session) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s sdk.Session)
	}{
		{"PutGetRoundTrip", testRoundTrip},
		{"GetRange", testGetRange},
		{"Stat", testStat},
		{"List", testList},
		{"ListStopsOnCallbackError", testListStops},
		{"DeleteThenNotFound", testDelete},
		{"OverwriteReplaces", testOverwrite},
		{"ConcurrentWriters", testConcurrentWriters},
		{"NoPartialObjectDuringPut", testNoPartialObject},
		{"InterruptedPut", testInterruptedPut},
		{"InvalidNames", testInvalidNames},
		{"Usage", testUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t)
			if s == nil {
				t.Fatal("targettest: newSession returned a nil session")
			}
			// Registered after newSession's own cleanups, so it runs
			// before them (a temporary directory is removed after
			// Release). t.Context is already cancelled during cleanup:
			// Release gets a context of its own.
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				if err := s.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			if names := listNames(t, ctx, s, ""); len(names) != 0 {
				t.Fatalf("targettest: newSession must return a session on an empty repository; it holds %q", names)
			}
			tt.fn(t, ctx, s)
		})
	}
}

// ---------------------------------------------------------------- helpers

// content returns n deterministic pseudo-random bytes for seed, so that
// different objects (and different versions of one) never compare equal
// by accident.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func put(t *testing.T, ctx context.Context, s sdk.Session, name string, data []byte) {
	t.Helper()
	if err := s.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
}

// get reads a range and returns the bytes, or the error of Get or of
// reading (whichever came first).
func get(ctx context.Context, s sdk.Session, name string, off, n int64) ([]byte, error) {
	rc, err := s.Get(ctx, name, off, n)
	if err != nil {
		return nil, err
	}
	if rc == nil {
		return nil, errors.New("the target's Get returned neither a reader nor an error")
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return b, err
}

func mustGet(t *testing.T, ctx context.Context, s sdk.Session, name string, off, n int64) []byte {
	t.Helper()
	b, err := get(ctx, s, name, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", name, off, n, err)
	}
	return b
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}

// listNames lists prefix and returns the names sorted, failing the test if
// a name is reported twice.
func listNames(t *testing.T, ctx context.Context, s sdk.Session, prefix string) []string {
	t.Helper()
	infos := listInfos(t, ctx, s, prefix)
	names := make([]string, 0, len(infos))
	for _, oi := range infos {
		names = append(names, oi.Name)
	}
	return names
}

func listInfos(t *testing.T, ctx context.Context, s sdk.Session, prefix string) []sdk.ObjectInfo {
	t.Helper()
	var infos []sdk.ObjectInfo
	seen := map[string]bool{}
	err := s.List(ctx, prefix, func(oi sdk.ObjectInfo) error {
		if seen[oi.Name] {
			t.Errorf("List(%q) reported %q twice", prefix, oi.Name)
		}
		seen[oi.Name] = true
		infos = append(infos, oi)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("%s: got error %v, want one matching sdk.ErrNotFound", what, err)
	}
}

// wantRefused checks an error that must not be mistaken for a missing
// object.
func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded; it must be refused", what)
	case errors.Is(err, sdk.ErrNotFound):
		t.Errorf("%s: error %v matches sdk.ErrNotFound; a refused request is not a missing object", what, err)
	}
}

// ---------------------------------------------------------------- tests

func testRoundTrip(t *testing.T, ctx context.Context, s sdk.Session) {
	objects := map[string][]byte{
		"empty":        {},
		"config":       []byte("repository config"),
		"data/ab/cdef": content(1, largeSize),
	}
	for name, data := range objects {
		put(t, ctx, s, name, data)
	}
	// size -1: the caller does not know the size in advance.
	unsized := content(2, 300_001)
	if err := s.Put(ctx, "unsized", io.MultiReader(bytes.NewReader(unsized)), -1); err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	objects["unsized"] = unsized
	for name, data := range objects {
		sameBytes(t, "Get("+name+")", mustGet(t, ctx, s, name, 0, 0), data)
	}
	// A reader closed before its end ends the call without harm.
	rc, err := s.Get(ctx, "data/ab/cdef", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatalf("reading the start of an object: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close before the end: %v", err)
	}
	sameBytes(t, "start of data/ab/cdef", buf, objects["data/ab/cdef"][:1000])
	sameBytes(t, "Get after an abandoned Get", mustGet(t, ctx, s, "config", 0, 0), objects["config"])
}

func testGetRange(t *testing.T, ctx context.Context, s sdk.Session) {
	const size = 1000
	data := content(3, size)
	put(t, ctx, s, "obj", data)
	big := content(4, largeSize)
	put(t, ctx, s, "big", big)
	for _, r := range []struct{ off, n int64 }{
		{0, 0}, {0, size}, {3, 4}, {7, 0}, {size - 1, 1}, {size - 1, 0}, {size, 0},
	} {
		end := int64(size)
		if r.n > 0 {
			end = r.off + r.n
		}
		sameBytes(t, fmt.Sprintf("Get(obj, %d, %d)", r.off, r.n), mustGet(t, ctx, s, "obj", r.off, r.n), data[r.off:end])
	}
	// Ranges spanning message and buffer boundaries of a large object.
	for _, r := range []struct{ off, n int64 }{
		{256<<10 - 10, 20}, {1, largeSize - 2}, {largeSize - 300_000, 0},
	} {
		end := int64(largeSize)
		if r.n > 0 {
			end = r.off + r.n
		}
		sameBytes(t, fmt.Sprintf("Get(big, %d, %d)", r.off, r.n), mustGet(t, ctx, s, "big", r.off, r.n), big[r.off:end])
	}
	for _, r := range []struct{ off, n int64 }{
		{size, 1}, {size - 5, 6}, {size + 1, 0}, {0, size + 1}, {-1, 0}, {0, -1},
	} {
		b, err := get(ctx, s, "obj", r.off, r.n)
		wantRefused(t, fmt.Sprintf("Get(obj, %d, %d) of a %d-byte object (returned %d bytes)", r.off, r.n, size, len(b)), err)
	}
}

func testStat(t *testing.T, ctx context.Context, s sdk.Session) {
	before := time.Now()
	data := content(5, 12345)
	put(t, ctx, s, "data/ab/cdef", data)
	oi, err := s.Stat(ctx, "data/ab/cdef")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if oi.Name != "data/ab/cdef" || oi.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want name data/ab/cdef and size %d", oi, len(data))
	}
	// Remote clocks differ; a day either way only catches nonsense.
	if oi.ModTime.IsZero() || oi.ModTime.Before(before.Add(-24*time.Hour)) || oi.ModTime.After(before.Add(24*time.Hour)) {
		t.Errorf("Stat ModTime = %v, want about %v", oi.ModTime, before)
	}
	put(t, ctx, s, "empty", nil)
	if oi, err := s.Stat(ctx, "empty"); err != nil || oi.Size != 0 {
		t.Errorf("Stat(empty) = %+v, %v", oi, err)
	}
	for _, name := range []string{"missing", "data/ab/missing", "data/zz/missing", "data/ab"} {
		_, err := s.Stat(ctx, name)
		wantNotFound(t, "Stat("+name+")", err)
	}
}

func testList(t *testing.T, ctx context.Context, s sdk.Session) {
	objects := map[string]int{
		"config":         10,
		"data/ab/cdef":   20,
		"data/ab/cdf0":   30,
		"data/cd/ef01":   40,
		"index/0001":     50,
		"snapshots/a1":   0,
		"snapshots/b2":   70,
		"locks/deep/x/y": 80,
	}
	for name, n := range objects {
		put(t, ctx, s, name, content(uint64(n), n))
	}
	all := make([]string, 0, len(objects))
	for name := range objects {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"data/", []string{"data/ab/cdef", "data/ab/cdf0", "data/cd/ef01"}},
		{"data/ab/", []string{"data/ab/cdef", "data/ab/cdf0"}},
		{"data/ab/cd", []string{"data/ab/cdef", "data/ab/cdf0"}},
		{"data/ab/cdef", []string{"data/ab/cdef"}},
		{"data/c", []string{"data/cd/ef01"}},
		{"data", []string{"data/ab/cdef", "data/ab/cdf0", "data/cd/ef01"}},
		{"snap", []string{"snapshots/a1", "snapshots/b2"}},
		{"snapshots/b", []string{"snapshots/b2"}},
		{"locks/", []string{"locks/deep/x/y"}},
		{"c", []string{"config"}},
		{"nothing/", nil},
		{"nothing/here/", nil},
		{"zzz", nil},
	} {
		got := listNames(t, ctx, s, tc.prefix)
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	for _, oi := range listInfos(t, ctx, s, "") {
		if oi.Size != int64(objects[oi.Name]) {
			t.Errorf("List reports %s with size %d, want %d", oi.Name, oi.Size, objects[oi.Name])
		}
	}
}

func testListStops(t *testing.T, ctx context.Context, s sdk.Session) {
	for i := range 5 {
		put(t, ctx, s, fmt.Sprintf("obj/%d", i), []byte{byte(i)})
	}
	stop := errors.New("targettest: stop listing")
	calls := 0
	err := s.List(ctx, "", func(sdk.ObjectInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with a failing callback returned %v after %d calls; want the callback's error after 1 call", err, calls)
	}
	// The session still works after a listing was cut short.
	if got := listNames(t, ctx, s, "obj/"); len(got) != 5 {
		t.Errorf("List after a stopped List = %q", got)
	}
}

func testDelete(t *testing.T, ctx context.Context, s sdk.Session) {
	put(t, ctx, s, "data/ab/cdef", []byte("x"))
	put(t, ctx, s, "data/ab/keep", []byte("y"))
	if err := s.Delete(ctx, "data/ab/cdef"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, name := range []string{"data/ab/cdef", "never-stored", "data/zz/never-stored"} {
		_, err := get(ctx, s, name, 0, 0)
		wantNotFound(t, "Get("+name+")", err)
		_, err = s.Stat(ctx, name)
		wantNotFound(t, "Stat("+name+")", err)
		wantNotFound(t, "Delete("+name+")", s.Delete(ctx, name))
	}
	if got := listNames(t, ctx, s, ""); !slices.Equal(got, []string{"data/ab/keep"}) {
		t.Errorf("List after Delete = %q, want [data/ab/keep]", got)
	}
	sameBytes(t, "the object beside the deleted one", mustGet(t, ctx, s, "data/ab/keep", 0, 0), []byte("y"))
	// A name can be stored again after its deletion.
	put(t, ctx, s, "data/ab/cdef", []byte("again"))
	sameBytes(t, "Get after Put after Delete", mustGet(t, ctx, s, "data/ab/cdef", 0, 0), []byte("again"))
}

func testOverwrite(t *testing.T, ctx context.Context, s sdk.Session) {
	long := content(6, largeSize)
	short := content(7, 100)
	put(t, ctx, s, "obj", long)
	put(t, ctx, s, "obj", short)
	// No tail of the longer old version may survive.
	sameBytes(t, "Get after overwriting with a shorter object", mustGet(t, ctx, s, "obj", 0, 0), short)
	if oi, err := s.Stat(ctx, "obj"); err != nil || oi.Size != int64(len(short)) {
		t.Errorf("Stat after overwrite = %+v, %v; want size %d", oi, err, len(short))
	}
	put(t, ctx, s, "obj", long)
	sameBytes(t, "Get after overwriting with a longer object", mustGet(t, ctx, s, "obj", 0, 0), long)
	if got := listNames(t, ctx, s, ""); !slices.Equal(got, []string{"obj"}) {
		t.Errorf("List after overwrites = %q, want [obj]", got)
	}
}

func testConcurrentWriters(t *testing.T, ctx context.Context, s sdk.Session) {
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	name := func(i int) string {
		// Four writers share each directory, so directory creation races.
		return fmt.Sprintf("data/%02x/obj-%02d", i%4, i)
	}
	for i := range writers {
		wg.Go(func() {
			data := content(uint64(100+i), 64<<10+i)
			errs[i] = s.Put(ctx, name(i), bytes.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	var want []string
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put(%q): %v", name(i), err)
			continue
		}
		want = append(want, name(i))
		sameBytes(t, "Get("+name(i)+")", mustGet(t, ctx, s, name(i), 0, 0), content(uint64(100+i), 64<<10+i))
	}
	sort.Strings(want)
	if got := listNames(t, ctx, s, "data/"); !slices.Equal(got, want) {
		t.Errorf("List after concurrent Puts = %q, want %q", got, want)
	}
}

// gatedReader delivers the first half of its data, then blocks until the
// test opens the gate: the Put is then surely in progress while the test
// looks at the target.
type gatedReader struct {
	r       *bytes.Reader
	half    int64
	reached chan struct{} // closed when half was delivered
	gate    chan struct{} // closed by the test
	once    sync.Once
}

func newGatedReader(data []byte) *gatedReader {
	return &gatedReader{r: bytes.NewReader(data), half: int64(len(data) / 2),
		reached: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	done := int64(g.r.Size()) - int64(g.r.Len())
	if done >= g.half {
		g.once.Do(func() { close(g.reached) })
		<-g.gate
		return g.r.Read(p)
	}
	if rest := g.half - done; int64(len(p)) > rest {
		p = p[:rest]
	}
	return g.r.Read(p)
}

func testNoPartialObject(t *testing.T, ctx context.Context, s sdk.Session) {
	old := content(8, largeSize)
	put(t, ctx, s, "existing", old)
	stored := []string{"existing"} // sorted
	for _, tc := range []struct {
		name string
		old  []byte // nil: a new object
	}{{"new", nil}, {"existing", old}} {
		data := content(9, largeSize+777)
		g := newGatedReader(data)
		done := make(chan error, 1)
		go func() { done <- s.Put(ctx, tc.name, g, int64(len(data))) }()
		var openOnce sync.Once
		open := func() { openOnce.Do(func() { close(g.gate) }) }
		// A Fatal below must not leave the Put blocked forever.
		defer open()
		select {
		case <-g.reached:
		case err := <-done:
			open()
			t.Fatalf("Put(%q) returned before reading half of its data: %v", tc.name, err)
		case <-ctx.Done():
			open()
			t.Fatal(ctx.Err())
		}
		// Half of the object is with the target now. Look at it a few
		// times, as a reader running beside the backup would.
		for range 3 {
			if tc.old == nil {
				_, err := s.Stat(ctx, tc.name)
				wantNotFound(t, "Stat of an object whose Put is in progress", err)
				_, err = get(ctx, s, tc.name, 0, 0)
				wantNotFound(t, "Get of an object whose Put is in progress", err)
			} else {
				b, err := get(ctx, s, tc.name, 0, 0)
				if err != nil {
					t.Errorf("Get of an object being overwritten: %v", err)
				} else {
					sameBytes(t, "Get of an object being overwritten (want the old version whole)", b, tc.old)
				}
				if oi, err := s.Stat(ctx, tc.name); err != nil || oi.Size != int64(len(tc.old)) {
					t.Errorf("Stat of an object being overwritten = %+v, %v; want the old size %d", oi, err, len(tc.old))
				}
			}
			if got := listNames(t, ctx, s, ""); !slices.Equal(got, stored) {
				t.Errorf("List while a Put is in progress = %q, want %q", got, stored)
			}
		}
		open()
		if err := <-done; err != nil {
			t.Fatalf("Put(%q): %v", tc.name, err)
		}
		if !slices.Contains(stored, tc.name) {
			stored = append(stored, tc.name)
			sort.Strings(stored)
		}
		sameBytes(t, "Get("+tc.name+") after the Put", mustGet(t, ctx, s, tc.name, 0, 0), data)
	}
}

// failingReader returns err after n bytes.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func testInterruptedPut(t *testing.T, ctx context.Context, s sdk.Session) {
	old := []byte("the old version")
	put(t, ctx, s, "existing", old)
	boom := errors.New("targettest: source failed midway")
	data := content(10, largeSize)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		what string
		put  func(name string) error
	}{
		{"reader failing midway", func(name string) error {
			return s.Put(ctx, name, &failingReader{r: bytes.NewReader(data), n: len(data) / 2, err: boom}, int64(len(data)))
		}},
		{"reader failing midway, size unknown", func(name string) error {
			return s.Put(ctx, name, &failingReader{r: bytes.NewReader(data), n: len(data) / 2, err: boom}, -1)
		}},
		{"body shorter than announced", func(name string) error {
			return s.Put(ctx, name, bytes.NewReader(data[:1000]), 1001)
		}},
		{"body longer than announced", func(name string) error {
			return s.Put(ctx, name, bytes.NewReader(data[:1000]), 999)
		}},
		{"cancelled context", func(name string) error {
			return s.Put(cancelled, name, bytes.NewReader(data), int64(len(data)))
		}},
	}
	for _, tc := range cases {
		if err := tc.put("new"); err == nil {
			t.Errorf("Put with a %s succeeded", tc.what)
		}
		_, err := s.Stat(ctx, "new")
		wantNotFound(t, "Stat after a Put with a "+tc.what, err)
		if err := tc.put("existing"); err == nil {
			t.Errorf("overwriting Put with a %s succeeded", tc.what)
		}
		sameBytes(t, "the old object after an overwriting Put with a "+tc.what, mustGet(t, ctx, s, "existing", 0, 0), old)
		if got := listNames(t, ctx, s, ""); !slices.Equal(got, []string{"existing"}) {
			t.Errorf("List after a Put with a %s = %q, want [existing]", tc.what, got)
		}
	}
	// The name is still usable.
	put(t, ctx, s, "new", data)
	sameBytes(t, "Get after failed Puts", mustGet(t, ctx, s, "new", 0, 0), data)
}

func testInvalidNames(t *testing.T, ctx context.Context, s sdk.Session) {
	put(t, ctx, s, "a/b", []byte("x"))
	for _, name := range []string{"", "../x", "/abs", "a//b", "a/../b", "a/./b", ".", "..", "./a", "a/", "x/.."} {
		q := fmt.Sprintf("%q", name)
		wantRefused(t, "Put("+q+")", s.Put(ctx, name, strings.NewReader("x"), 1))
		_, err := get(ctx, s, name, 0, 0)
		wantRefused(t, "Get("+q+")", err)
		_, err = s.Stat(ctx, name)
		wantRefused(t, "Stat("+q+")", err)
		wantRefused(t, "Delete("+q+")", s.Delete(ctx, name))
	}
	for _, prefix := range []string{"../", "/", "a//", "../a"} {
		err := s.List(ctx, prefix, func(oi sdk.ObjectInfo) error { return nil })
		wantRefused(t, fmt.Sprintf("List(%q)", prefix), err)
	}
	if got := listNames(t, ctx, s, ""); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("List after refused names = %q, want [a/b]", got)
	}
	sameBytes(t, "a/b after refused names", mustGet(t, ctx, s, "a/b", 0, 0), []byte("x"))
}

func testUsage(t *testing.T, ctx context.Context, s sdk.Session) {
	put(t, ctx, s, "obj", content(11, 4096))
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.TotalBytes < -1 || u.FreeBytes < -1 || u.UsedBytes < -1 {
		t.Errorf("Usage = %+v: sizes are bytes, or -1 for unknown", u)
	}
	if u.TotalBytes == 0 {
		t.Errorf("Usage = %+v: a total of 0 bytes; say -1 if it is unknown", u)
	}
	if u.TotalBytes > 0 && u.FreeBytes > u.TotalBytes {
		t.Errorf("Usage = %+v: more free than total", u)
	}
	if u.TotalBytes > 0 && u.UsedBytes > u.TotalBytes {
		t.Errorf("Usage = %+v: more used than total", u)
	}
	if u.UsedBytes >= 0 && u.UsedBytes < 4096 {
		t.Errorf("Usage = %+v: less used than the 4096 bytes just stored", u)
	}
}
