package repo

// Benchmarks behind the format choices in docs/REPOSITORY.md. Rerun with
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/repo/ ./internal/repo/chunker/

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/backup-runner/runner/internal/repo/pack"
	"github.com/backup-runner/runner/internal/repo/zstdenc"
)

var benchKey = make([]byte, 32)

func benchData() []byte { return randBytes(42, 1<<20) }

// BenchmarkHash compares the candidate blob id hashes on 1 MiB (one
// average chunk), plain and keyed.
func BenchmarkHash(b *testing.B) {
	data := benchData()
	for _, tc := range []struct {
		name string
		fn   func([]byte)
	}{
		{"sha256", func(d []byte) { sha256.Sum256(d) }},
		{"hmac-sha256", func(d []byte) { h := hmac.New(sha256.New, benchKey); h.Write(d); h.Sum(nil) }},
		{"blake3", func(d []byte) { blake3.Sum256(d) }},
		{"blake3-keyed", func(d []byte) { h, _ := blake3.NewKeyed(benchKey); _, _ = h.Write(d); h.Sum(nil) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				tc.fn(data)
			}
		})
	}
}

// goSource returns up to n bytes of Go standard library source: real text
// of the kind (configs, code, markup) that sites are made of.
func goSource(b *testing.B, n int) []byte {
	var out []byte
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("go env GOROOT:", err)
	}
	_ = filepath.WalkDir(filepath.Join(strings.TrimSpace(string(goroot)), "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || len(out) >= n {
			return fs.SkipAll
		}
		if strings.HasSuffix(p, ".go") {
			if c, err := os.ReadFile(p); err == nil {
				out = append(out, c...)
			}
		}
		return nil
	})
	if len(out) < n {
		b.Skip("Go sources not available")
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// BenchmarkZstd measures compression of 1 MiB chunks of Go source at the
// levels a repository may choose, with the encoder of this build (libzstd
// with cgo, klauspost/compress without), and decompression.
func BenchmarkZstd(b *testing.B) {
	src := goSource(b, 8<<20)
	b.Logf("encoder: %s", zstdenc.Implementation())
	for _, level := range []int{1, 3, 7} {
		enc, err := zstdenc.New(level, 1, encoderWindow)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/level="+itoa(level), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			var out int
			buf := make([]byte, 0, 2<<20)
			for i := 0; i < b.N; i++ {
				out = 0
				for off := 0; off < len(src); off += 1 << 20 {
					buf, _ = enc.EncodeAll(src[off:min(off+1<<20, len(src))], buf[:0])
					out += len(buf)
				}
			}
			b.ReportMetric(float64(out)/float64(len(src)), "ratio")
		})
		comp, _ := enc.EncodeAll(src[:1<<20], nil)
		dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		b.Run("decode/level="+itoa(level), func(b *testing.B) {
			b.SetBytes(1 << 20)
			buf := make([]byte, 0, 1<<20)
			for i := 0; i < b.N; i++ {
				if _, err := dec.DecodeAll(comp, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		dec.Close()
		_ = enc.Close()
	}
	b.Run("encode-incompressible/level=1", func(b *testing.B) {
		enc, _ := zstdenc.New(1, 1, encoderWindow)
		data := benchData()
		buf := make([]byte, 0, len(data)+len(data)/8)
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			buf, _ = enc.EncodeAll(data, buf[:0])
		}
	})
}

func itoa(i int) string { return string(rune('0' + i)) }

// BenchmarkSaveBlob is the whole write path of a chunk (hash, compress,
// seal, pack, upload to a local directory) from GOMAXPROCS goroutines, on
// an even mix of incompressible and text chunks of 1 MiB.
func BenchmarkSaveBlob(b *testing.B) {
	for _, enc := range []bool{false, true} {
		name := "unencrypted"
		if enc {
			name = "encrypted"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st := newStore(b)
			o := testInitOptions(enc)
			o.ChunkMin, o.ChunkAvg, o.ChunkMax, o.PackSize = 0, 0, 0, DefaultPackSize
			if err := Init(ctx, st, o); err != nil {
				b.Fatal(err)
			}
			r := openRepo(b, st, enc, LockShared)
			text := goSource(b, 8<<20)
			chunks := make([][]byte, 16)
			for i := range chunks {
				if i%2 == 0 {
					chunks[i] = randBytes(int64(i), 1<<20)
				} else {
					chunks[i] = text[(i/2)<<20 : (i/2+1)<<20]
				}
			}
			b.SetBytes(1 << 20)
			b.ResetTimer()
			var mu sync.Mutex
			n := 0
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					n++
					// Make every chunk unique so that nothing deduplicates.
					c := append([]byte{}, chunks[n%len(chunks)]...)
					c[0], c[1], c[2] = byte(n), byte(n>>8), byte(n>>16)
					mu.Unlock()
					if _, _, err := r.SaveBlob(ctx, DataBlob, c); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if err := r.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkIndexLoad measures the in-memory part of opening a repository
// of 250,000 blobs: adding the index objects' entries and sorting them.
func BenchmarkIndexLoad(b *testing.B) {
	const blobs, perPack = 250_000, 50
	packs := make([]indexPack, 0, blobs/perPack)
	rnd := randBytes(7, blobs*32+(blobs/perPack)*32)
	for p := 0; p < blobs/perPack; p++ {
		ip := indexPack{Entries: make([]pack.Entry, perPack)}
		copy(ip.ID[:], rnd[len(rnd)-(p+1)*32:])
		for i := range ip.Entries {
			e := &ip.Entries[i]
			e.Type, e.Length, e.RawLength, e.Offset = uint8(DataBlob), 1<<20, 1<<20, uint64(i)<<20
			copy(e.ID[:], rnd[(p*perPack+i)*32:])
		}
		packs = append(packs, ip)
	}
	b.ResetTimer()
	for range b.N {
		m := newMemIndex()
		m.beginLoad()
		m.reserve(blobs)
		for _, p := range packs {
			if err := m.addPack(p); err != nil {
				b.Fatal(err)
			}
		}
		m.endLoad()
		if len(m.sorted) != blobs {
			b.Fatalf("%d entries, want %d", len(m.sorted), blobs)
		}
	}
}
