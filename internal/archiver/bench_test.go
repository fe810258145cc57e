//go:build linux

package archiver

// Benchmarks of the backup and restore paths on generated trees, with the
// repository's default parameters (1 MiB chunks, zstd level 1):
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/archiver/
//
// "pool" is the shipped configuration (chunk savers take chunks from the
// readers), "inline" saves every chunk in the goroutine that read it.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/local"
)

type benchSet struct {
	root  string
	bytes int64
}

var (
	benchOnce sync.Once
	benchDir  string
	benchBig  benchSet
	benchMany benchSet
)

// benchData generates, once per process, one 256 MiB file (4 MiB runs
// alternating random and text, so half compresses) and 5,000 small files
// (100 B to 40 KiB, in 50 directories, text and random alternating).
func benchData(b *testing.B) (benchSet, benchSet) {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "archiver-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		big := filepath.Join(dir, "big")
		must(b, os.MkdirAll(big, 0o755))
		f, err := os.Create(filepath.Join(big, "file.bin"))
		must(b, err)
		for i := range 64 {
			var chunk []byte
			if i%2 == 0 {
				chunk = randBytes(uint64(i), 4<<20)
			} else {
				chunk = textBytes(uint64(i), 4<<20)
			}
			_, err := f.Write(chunk)
			must(b, err)
		}
		must(b, f.Close())
		benchBig = benchSet{big, 256 << 20}

		many := filepath.Join(dir, "many")
		var total int64
		for i := range 5000 {
			n := 100 + (i*7919)%(40<<10)
			var data []byte
			if i%2 == 0 {
				data = textBytes(uint64(i), n)
			} else {
				data = randBytes(uint64(i), n)
			}
			writeFile(b, filepath.Join(many, "d"+strconv.Itoa(i%50), "f"+strconv.Itoa(i)), data, 0o644)
			total += int64(n)
		}
		benchMany = benchSet{many, total}
	})
	return benchBig, benchMany
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// rss measures the process's resident memory around a benchmark: reset
// lowers the kernel's peak mark (VmHWM) to the current RSS after handing
// freed heap back; report adds the peak and its growth over the baseline
// as metrics. (The test data generator's garbage would otherwise count.)
type rss struct{ base, peak uint64 }

func procStatusKiB(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			v, _ := strconv.ParseUint(string(bytes.Fields(rest)[0]), 10, 64)
			return v
		}
	}
	return 0
}

func (m *rss) reset() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	m.base = procStatusKiB("VmRSS")
}

func (m *rss) sample() { m.peak = max(m.peak, procStatusKiB("VmHWM")) }

func (m *rss) report(b *testing.B) {
	b.ReportMetric(float64(m.peak)/1024, "peakRSS-MiB")
	b.ReportMetric(float64(m.peak-min(m.base, m.peak))/1024, "growth-MiB")
}

func benchRepo(b *testing.B) (*repo.Repository, string) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "archiver-bench-repo-")
	must(b, err)
	st, err := local.New(dir)
	must(b, err)
	must(b, repo.Init(ctx, st, repo.InitOptions{Unencrypted: true}))
	r, err := repo.Open(ctx, st, repo.OpenOptions{Lock: repo.LockShared, TempDir: dir})
	must(b, err)
	return r, dir
}

func BenchmarkBackup(b *testing.B) {
	big, many := benchData(b)
	for _, set := range []struct {
		name string
		benchSet
	}{{"big256MiB", big}, {"small5000", many}} {
		for _, mode := range []string{"pool", "inline"} {
			b.Run(set.name+"/"+mode, func(b *testing.B) {
				b.SetBytes(set.bytes)
				var m rss
				defer m.report(b)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					r, dir := benchRepo(b)
					a := New(r, Options{})
					if mode == "inline" {
						a.chunkBufs = 0
					}
					m.reset()
					b.StartTimer()
					if _, err := a.Tree(context.Background(), "files", TreeSpec{Root: set.root}); err != nil {
						b.Fatal(err)
					}
					must(b, r.Flush(context.Background()))
					b.StopTimer()
					m.sample()
					_ = r.Close(context.Background())
					_ = os.RemoveAll(dir)
				}
			})
		}
	}
}

func BenchmarkRestore(b *testing.B) {
	big, many := benchData(b)
	for _, set := range []struct {
		name string
		benchSet
	}{{"big256MiB", big}, {"small5000", many}} {
		b.Run(set.name, func(b *testing.B) {
			r, dir := benchRepo(b)
			defer func() { _ = os.RemoveAll(dir) }()
			defer func() { _ = r.Close(context.Background()) }()
			it, err := New(r, Options{}).Tree(context.Background(), "files", TreeSpec{Root: set.root})
			must(b, err)
			must(b, r.Flush(context.Background()))
			// Restores are removed at the end, not between iterations: on
			// a file system mounted with "discard" the deletions would
			// slow down the next iteration's file creation.
			dsts, err := os.MkdirTemp("", "archiver-bench-dst-")
			must(b, err)
			defer func() { _ = os.RemoveAll(dsts) }()
			b.SetBytes(set.bytes)
			var m rss
			defer m.report(b)
			m.reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst := filepath.Join(dsts, strconv.Itoa(i))
				if _, err := Restore(context.Background(), r, it, dst, RestoreOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			m.sample()
		})
	}
}

// BenchmarkBackupUnchanged is a backup with nothing changed since the
// previous one, whose cache it uses: one stat per file, no reads.
func BenchmarkBackupUnchanged(b *testing.B) {
	_, many := benchData(b)
	r, dir := benchRepo(b)
	defer func() { _ = os.RemoveAll(dir) }()
	defer func() { _ = r.Close(context.Background()) }()
	a := New(r, Options{})
	a.racyWindow = 0
	if _, err := a.Tree(context.Background(), "files", TreeSpec{Root: many.root}); err != nil {
		b.Fatal(err)
	}
	must(b, r.Flush(context.Background()))
	cache := a.NewCache()
	var m rss
	defer m.report(b)
	m.reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := New(r, Options{Cache: cache})
		if _, err := a.Tree(context.Background(), "files", TreeSpec{Root: many.root}); err != nil {
			b.Fatal(err)
		}
		if st := a.Stats(); st.FilesRead != 0 {
			b.Fatalf("%d files read", st.FilesRead)
		}
	}
	m.sample()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5050, "ns/entry")
}
