package zstdenc

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testData is half text, half random bytes, so that frames hold both
// compressed and raw blocks.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n)
	for len(b) < n/2 {
		b = append(b, "INSERT INTO wp_posts VALUES (1,'hello world'),"...)
		b = append(b, byte('a'+r.IntN(26)))
	}
	for len(b) < n {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// The frames decode with klauspost's decoder (what the repository reads
// with), carry no checksum and no wrong content size, and are appended to
// dst's existing bytes.
func TestEncodeAllRoundTrip(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, level := range []int{1, 3, 9, 19} {
		enc, err := New(level, 2, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 1000, 300 << 10, 3 << 20} {
			src := testData(n, uint64(n))
			prefix := []byte("prefix")
			out, err := enc.EncodeAll(src, append(make([]byte, 0, 8), prefix...))
			if err != nil {
				t.Fatalf("level %d, %d bytes: %v", level, n, err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("level %d, %d bytes: dst's bytes were not kept", level, n)
			}
			frame := out[len(prefix):]
			var h zstd.Header
			if err := h.Decode(frame); err != nil {
				t.Fatalf("level %d, %d bytes: header: %v", level, n, err)
			}
			if h.HasCheckSum || (h.HasFCS && h.FrameContentSize != uint64(n)) {
				t.Fatalf("level %d, %d bytes: header %+v", level, n, h)
			}
			got, err := dec.DecodeAll(frame, nil)
			if err != nil {
				t.Fatalf("level %d, %d bytes: decode: %v", level, n, err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("level %d, %d bytes: round trip differs", level, n)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Bound is libzstd's bound: EncodeAll into that much room appends in
// place, even for data that does not compress.
func TestBound(t *testing.T) {
	enc, err := New(1, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for _, n := range []int{0, 1, 100, 128 << 10, 1 << 20, 3<<20 + 7} {
		// All random: the worst case, stored as raw blocks.
		src := make([]byte, n)
		r := rand.New(rand.NewPCG(9, uint64(n)))
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		dst := make([]byte, 0, Bound(n))
		out, err := enc.EncodeAll(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		moved := len(out) > 0 && &out[0] != &dst[:1][0]
		if len(out) > Bound(n) || moved {
			t.Errorf("%d bytes: frame of %d bytes, bound %d, reallocated %v", n, len(out), Bound(n), moved)
		}
	}
}

func TestLevelOutOfRange(t *testing.T) {
	for _, level := range []int{0, -1, 23} {
		if _, err := New(level, 1, 1<<20); err == nil {
			t.Errorf("level %d accepted", level)
		}
	}
}

// Concurrent callers share the bounded set of contexts (run with -race).
func TestEncodeAllConcurrent(t *testing.T) {
	enc, err := New(1, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := testData(200<<10, uint64(i))
			for range 10 {
				out, err := enc.EncodeAll(src, nil)
				if err != nil {
					errs <- err
					return
				}
				got, err := dec.DecodeAll(out, nil)
				if err != nil || !bytes.Equal(got, src) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal("concurrent round trip failed:", err)
	}
}

func BenchmarkEncodeAll(b *testing.B) {
	src := testData(1<<20, 7)
	enc, _ := New(1, 1, 1<<20)
	defer enc.Close()
	dst := make([]byte, 0, 2<<20)
	b.SetBytes(int64(len(src)))
	b.Logf("implementation: %s", Implementation())
	for b.Loop() {
		dst, _ = enc.EncodeAll(src, dst[:0])
	}
}
