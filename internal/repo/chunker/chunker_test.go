package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

func testParams(seed byte) Params {
	var s [32]byte
	s[0] = seed
	return Params{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10, Seed: s}
}

func randomData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func chunkAll(t testing.TB, tab *Table, r io.Reader) [][]byte {
	t.Helper()
	c := New(tab, r)
	var out [][]byte
	for {
		b, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		ok   bool
	}{
		{"default", DefaultParams(DefaultSeed), true},
		{"small", testParams(0), true},
		{"min too small", Params{Min: 1, Avg: 4096, Max: 8192}, false},
		{"max too big", Params{Min: 1024, Avg: 4096, Max: MaxLimit + 1}, false},
		{"avg not pow2", Params{Min: 1024, Avg: 5000, Max: 8192}, false},
		{"order", Params{Min: 8192, Avg: 4096, Max: 16384}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestChunksReassembleAndRespectBounds(t *testing.T) {
	tab, err := NewTable(testParams(1))
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(1<<20+12345, 1)
	// A reader returning one byte at a time exercises the refill path.
	for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
		chunks := chunkAll(t, tab, r)
		if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
			t.Fatal("chunks do not reassemble to the input")
		}
		for i, c := range chunks {
			if len(c) > tab.p.Max || (len(c) < tab.p.Min && i != len(chunks)-1) {
				t.Fatalf("chunk %d has size %d outside [%d, %d]", i, len(c), tab.p.Min, tab.p.Max)
			}
		}
		avg := len(data) / len(chunks)
		if avg < tab.p.Avg/2 || avg > tab.p.Avg*2 {
			t.Fatalf("average chunk size %d far from %d", avg, tab.p.Avg)
		}
	}
}

func TestDeterministicAndSeeded(t *testing.T) {
	data := randomData(512<<10, 2)
	a, _ := NewTable(testParams(1))
	b, _ := NewTable(testParams(1))
	c, _ := NewTable(testParams(2))
	sizes := func(tab *Table) []int {
		var s []int
		for _, ch := range chunkAll(t, tab, bytes.NewReader(data)) {
			s = append(s, len(ch))
		}
		return s
	}
	sa, sb, sc := sizes(a), sizes(b), sizes(c)
	if !equalInts(sa, sb) {
		t.Fatal("same seed gave different boundaries")
	}
	if equalInts(sa, sc) {
		t.Fatal("different seeds gave identical boundaries")
	}
}

// TestGoldenBoundaries pins the boundaries of the default-seed table: they are
// part of the on-disk format (a change would silently stop deduplication
// against existing repositories).
func TestGoldenBoundaries(t *testing.T) {
	tab, err := NewTable(testParams(0))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, ch := range chunkAll(t, tab, bytes.NewReader(randomData(64<<10, 3))) {
		got = append(got, len(ch))
	}
	want := []int{2596, 6015, 4519, 6058, 3735, 4436, 6353, 4150, 5472, 4146, 5282, 5634, 4922, 2218}
	if !equalInts(got, want) {
		t.Fatalf("boundaries changed: got %v, want %v", got, want)
	}
}

func TestShiftResistance(t *testing.T) {
	tab, _ := NewTable(testParams(1))
	data := randomData(1<<20, 4)
	edited := append(append(append([]byte{}, data[:300<<10]...), []byte("inserted bytes")...), data[300<<10:]...)
	seen := map[string]bool{}
	orig := chunkAll(t, tab, bytes.NewReader(data))
	for _, c := range orig {
		seen[string(c)] = true
	}
	shared := 0
	for _, c := range chunkAll(t, tab, bytes.NewReader(edited)) {
		if seen[string(c)] {
			shared++
		}
	}
	if shared < len(orig)-3 {
		t.Fatalf("only %d of %d chunks survived a small insertion", shared, len(orig))
	}
}

func TestReadError(t *testing.T) {
	tab, _ := NewTable(testParams(1))
	boom := errors.New("boom")
	c := New(tab, iotest.ErrReader(boom))
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
}

func TestEmptyInput(t *testing.T) {
	tab, _ := NewTable(testParams(1))
	if got := chunkAll(t, tab, bytes.NewReader(nil)); len(got) != 0 {
		t.Fatalf("got %d chunks for empty input", len(got))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkChunker reports chunking throughput (MB/s) with the default sizes.
func BenchmarkChunker(b *testing.B) {
	tab, err := NewTable(DefaultParams(DefaultSeed))
	if err != nil {
		b.Fatal(err)
	}
	data := randomData(32<<20, 5)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	n := 0
	c := New(tab, nil)
	for i := 0; i < b.N; i++ {
		c.Reset(bytes.NewReader(data))
		for {
			_, err := c.Next()
			if err != nil {
				break
			}
			n++
		}
	}
	b.ReportMetric(float64(len(data))/float64(n/b.N)/(1<<20), "MiB/chunk")
}

// unevenReader returns reads of varying sizes, as pipes and sockets do.
type unevenReader struct {
	data []byte
	i    int
}

func (u *unevenReader) Read(p []byte) (int, error) {
	if len(u.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(u.data), 1+(u.i*7919)%(300<<10))
	u.i++
	copy(p, u.data[:n])
	u.data = u.data[n:]
	return n, nil
}

// With the default sizes the buffer starts small and grows: the
// boundaries must not depend on how reads arrive or on the buffer's size,
// and a reused chunker (Reset) must cut a small stream after a large one
// as a fresh one does.
func TestGrowingBufferKeepsBoundaries(t *testing.T) {
	tab, err := NewTable(DefaultParams([32]byte{9}))
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(20<<20, 5)
	// Reference: cut the whole stream in memory.
	var want []int
	for off := 0; off < len(data); {
		n := tab.Cut(data[off:])
		want = append(want, n)
		off += n
	}
	sizes := func(c *Chunker) []int {
		var got []int
		for {
			ch, err := c.Next()
			if err == io.EOF {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(ch))
		}
	}
	c := New(tab, bytes.NewReader(data[:100<<10]))
	if small := sizes(c); len(small) != 1 || small[0] != 100<<10 || len(c.buf) != initialBuf {
		t.Fatalf("a small stream: chunks %v, buffer %d", small, len(c.buf))
	}
	c.Reset(&unevenReader{data: data})
	if got := sizes(c); !equalInts(got, want) {
		t.Fatalf("boundaries with a growing buffer and uneven reads differ: %d chunks, want %d", len(got), len(want))
	}
	if len(c.buf) > DefaultMax+readRoom {
		t.Errorf("buffer grew to %d", len(c.buf))
	}
	c.Reset(bytes.NewReader(data[:5<<20]))
	var again []int
	for off := 0; off < 5<<20; {
		n := tab.Cut(data[off : 5<<20])
		again = append(again, n)
		off += n
	}
	if got := sizes(c); !equalInts(got, again) {
		t.Fatalf("after Reset: %v, want %v", got, again)
	}
}

// bytewiseFind is find written the plain way, one byte a step: the
// definition the two-bytes-a-step scan must match exactly.
func bytewiseFind(t *Table, data []byte, i int, fp uint64) (int, uint64) {
	for ; i < len(data); i++ {
		fp = fp<<1 + t.gear[data[i]]
		mask := t.maskL
		if i < t.p.Avg {
			mask = t.maskS
		}
		if fp&mask == 0 {
			return i + 1, fp
		}
	}
	return 0, fp
}

// TestScanMatchesBytewise compares find with the byte-wise definition on
// random and repetitive data, from odd and even resume points, with
// lengths on either side of Avg, so that every branch of the paired loop
// (a boundary after the first or the second byte of a pair, a leftover
// odd byte, the switch between masks) is exercised.
func TestScanMatchesBytewise(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for k, p := range []Params{testParams(0), DefaultParams(DefaultSeed)} {
		rounds := []int{3000, 150}[k] // the default chunks are 256 times larger
		tab, err := NewTable(p)
		if err != nil {
			t.Fatal(err)
		}
		sources := [][]byte{randomData(3*p.Max, 11), bytes.Repeat([]byte("wp_posts "), p.Max/3), make([]byte, 2*p.Max)}
		firstOdd, secondOdd := false, false
		for n := 0; n < rounds; n++ {
			src := sources[n%len(sources)]
			off := rng.Intn(len(src) - p.Max)
			data := src[off : off+p.Min+rng.Intn(p.Max-p.Min)]
			i := rng.Intn(len(data))
			fp := rng.Uint64()
			gotCut, gotFP := tab.find(data, i, fp)
			wantCut, wantFP := bytewiseFind(tab, data, i, fp)
			if gotCut != wantCut || gotFP != wantFP {
				t.Fatalf("params %+v, len %d, from %d: find = (%d, %x), byte-wise = (%d, %x)",
					p, len(data), i, gotCut, gotFP, wantCut, wantFP)
			}
			if gotCut > 0 {
				if (gotCut-i)%2 == 1 {
					firstOdd = true
				} else {
					secondOdd = true
				}
			}
		}
		if !firstOdd || !secondOdd {
			t.Fatalf("params %+v: boundaries found only after one byte of a pair (first %v, second %v)", p, firstOdd, secondOdd)
		}
	}
}
