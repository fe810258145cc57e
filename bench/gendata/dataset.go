package main

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"sort"
)

const (
	baseTime = int64(1704067200) // 2024-01-01T00:00:00Z
	year     = int64(365 * 86400)
)

// fileSpec describes one generated file completely.
type fileSpec struct {
	Rel        string
	Kind       kind
	Size       int64
	Seed       uint64 // content seed; duplicates share it
	Mode       fs.FileMode
	UID, GID   int
	Mtime      int64  // nanoseconds since the epoch
	Symlink    string // a symlink with this target when set
	HardlinkOf int    // index of the file this one is a hard link of, or -1
}

// dataset is the whole description of a generated tree.
type dataset struct {
	Kind  string
	Seed  uint64
	Quick bool
	Dirs  []string // every directory, parents first, "." excluded
	Empty []string // directories that stay empty (also in Dirs)
	Files []fileSpec
	// Total is the byte count of the regular files' contents.
	Total int64
}

func buildDataset(k string, seed uint64, quick bool) *dataset {
	ds := &dataset{Kind: k, Seed: seed, Quick: quick}
	if k == "site" {
		ds.buildSite()
	} else {
		ds.buildSmall()
	}
	ds.finish()
	return ds
}

// mtimeFor gives a deterministic time within 2024 to the nanosecond.
func mtimeFor(r *rand.Rand) int64 {
	return (baseTime+r.Int64N(year))*1e9 + r.Int64N(1e9)
}

// dirMtime is a directory's deterministic modification time.
func (ds *dataset) dirMtime(rel string) int64 {
	h := mix(hashString(rel) ^ ds.Seed)
	return (baseTime+int64(h%uint64(year)))*1e9 + int64((h>>32)%1e9)
}

// scaleSizes draws n lognormal weights and scales them to sum to total.
func scaleSizes(r *rand.Rand, n int, total int64, sigma float64) []int64 {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = math.Exp(r.NormFloat64() * sigma)
		sum += w[i]
	}
	out := make([]int64, n)
	var acc int64
	for i := range w {
		out[i] = int64(float64(total) * w[i] / sum)
		acc += out[i]
	}
	out[0] += total - acc
	return out
}

// buildSite describes the synthetic part of dataset (a): about 780 MiB (12
// MiB quick) of uploads, documents, logs, dumps and archives next to the
// copy of WordPress. About 57% of the bytes are incompressible.
func (ds *dataset) buildSite() {
	r := newRand(ds.Seed, 1)
	total := int64(780 << 20)
	scale := 1
	if ds.Quick {
		total = 12 << 20
		scale = 15
	}
	share := func(pct float64) int64 { return int64(float64(total) * pct / 100) }
	cnt := func(n int) int {
		if n/scale < 2 {
			return 2
		}
		return n / scale
	}
	add := func(f fileSpec) int {
		if f.Mode == 0 {
			f.Mode = 0o644
		}
		f.HardlinkOf = -1
		if f.Mtime == 0 {
			f.Mtime = mtimeFor(r)
		}
		if f.Seed == 0 {
			f.Seed = r.Uint64()
		}
		ds.Files = append(ds.Files, f)
		return len(ds.Files) - 1
	}
	words := func() string { return vocab[r.IntN(400)] + "-" + vocab[r.IntN(len(vocab))] }

	// Uploads: incompressible media.
	var uploads []int
	for i, sz := range scaleSizes(r, cnt(600), share(38), 1.3) {
		ext := []string{"jpg", "jpg", "jpg", "png", "webp", "mp4"}[r.IntN(6)]
		rel := fmt.Sprintf("wp-content/uploads/%d/%02d/%s-%d.%s", 2019+r.IntN(6), 1+r.IntN(12), words(), i, ext)
		uploads = append(uploads, add(fileSpec{Rel: rel, Kind: kRandom, Size: sz, UID: 33, GID: 33}))
	}
	// Documents: half compressible.
	for i, sz := range scaleSizes(r, cnt(80), share(7), 1.0) {
		ext := []string{"pdf", "docx", "xlsx"}[r.IntN(3)]
		rel := fmt.Sprintf("wp-content/uploads/%d/%02d/%s-%d.%s", 2019+r.IntN(6), 1+r.IntN(12), words(), i, ext)
		add(fileSpec{Rel: rel, Kind: kSemi, Size: sz, UID: 33, GID: 33})
	}
	// Old full-site archives: large and incompressible.
	for i, sz := range scaleSizes(r, 3, share(12), 0.3) {
		add(fileSpec{Rel: fmt.Sprintf("backups/site-2024-%02d.tar.gz", 3+i*4), Kind: kRandom, Size: sz, Mode: 0o600})
	}
	// Duplicated uploads (the same bytes under another name and time).
	dupBudget := share(4)
	for _, j := range r.Perm(len(uploads)) {
		if dupBudget <= 0 {
			break
		}
		src := ds.Files[uploads[j]]
		add(fileSpec{Rel: "backups/old-uploads/" + path.Base(src.Rel), Kind: src.Kind, Size: src.Size, Seed: src.Seed, Mode: 0o644})
		dupBudget -= src.Size
	}
	// Logs: very compressible.
	logSizes := scaleSizes(r, cnt(24), share(20), 0.8)
	for i, sz := range logSizes {
		name := "access.log"
		if i%4 == 3 {
			name = "error.log"
		}
		rel := fmt.Sprintf("logs/%s.%d", name, i) // rotated
		if i == 0 || i == 3 {
			rel = "logs/" + name // current
		}
		add(fileSpec{Rel: rel, Kind: kLog, Size: sz, Mode: 0o640})
	}
	// Database dumps.
	var dumps []int
	for i, sz := range scaleSizes(r, 2, share(6), 0.2) {
		dumps = append(dumps, add(fileSpec{Rel: fmt.Sprintf("backups/db-%d.sql", 2023+i), Kind: kSQL, Size: sz, Mode: 0o600}))
	}
	// Themes, plugins and pages: text.
	for i, sz := range scaleSizes(r, cnt(400), share(13), 1.4) {
		ext := []string{"php", "php", "css", "js", "html", "txt", "md", "json"}[r.IntN(8)]
		dir := []string{"wp-content/themes/" + vocab[r.IntN(5)], "wp-content/plugins/" + vocab[5+r.IntN(12)],
			"wp-content/languages", "docs"}[r.IntN(4)]
		rel := fmt.Sprintf("%s/%s/%s-%d.%s", dir, vocab[20+r.IntN(10)], words(), i, ext)
		add(fileSpec{Rel: rel, Kind: kProse, Size: sz, UID: 33, GID: 33})
	}
	// Links.
	add(fileSpec{Rel: "logs/current.log", Symlink: "access.log"})
	add(fileSpec{Rel: "wp-content/uploads/latest", Symlink: "2024/12"})
	add(fileSpec{Rel: "wp-content/wp-config.php", Symlink: "/etc/wordpress/config-bench.php"})
	i := add(fileSpec{Rel: "backups/db-latest.sql"})
	ds.Files[i].HardlinkOf = dumps[1]
	ds.Empty = []string{"wp-content/cache", "wp-content/upgrade", "wp-content/uploads/2025/01", "tmp"}
}

// buildSmall describes dataset (b): 200,000 files (2,000 quick) of a few
// KiB each in a tree 6 to 10 directories deep.
func (ds *dataset) buildSmall() {
	r := newRand(ds.Seed, 2)
	nFiles := 200000
	if ds.Quick {
		nFiles = 2000
	}
	nLeaves := nFiles / 25
	levelWords := []string{"src", "lib", "mod", "pkg", "app", "res", "data", "core", "util", "part"}
	leaves := make([]string, 0, nLeaves)
	seen := map[string]bool{}
	for len(leaves) < nLeaves {
		depth := 6 + r.IntN(5)
		p := ""
		for l := 0; l < depth; l++ {
			fan := 4
			if l == 0 {
				fan = 3
			}
			c := fmt.Sprintf("%s-%s%d", levelWords[(l+r.IntN(2))%len(levelWords)], vocab[l*7+r.IntN(3)], r.IntN(fan))
			p = path.Join(p, c)
		}
		if !seen[p] {
			seen[p] = true
			leaves = append(leaves, p)
		}
	}
	// A pool of common files that appear many times (licenses, configs).
	type common struct {
		name string
		k    kind
		size int64
		seed uint64
	}
	var pool []common
	for i := 0; i < 40; i++ {
		pool = append(pool, common{name: []string{"LICENSE", "README.md", ".gitignore", "package.json", "index.php"}[i%5],
			k: kProse, size: 200 + r.Int64N(12000), seed: r.Uint64()})
	}
	exts := map[kind][]string{
		kProse:  {"txt", "md", "js", "php", "py", "html", "css", "json", "xml", "go"},
		kLog:    {"log"},
		kSQL:    {"sql", "csv"},
		kRandom: {"png", "jpg", "gz", "bin", "woff2"},
		kSemi:   {"pdf", "db"},
	}
	logUniform := func(lo, hi float64) int64 {
		return int64(math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo))))
	}
	for i := 0; i < nFiles; i++ {
		dir := leaves[r.IntN(len(leaves))]
		if r.IntN(10) == 0 { // some files higher up in the tree
			parts := splitPath(dir)
			dir = path.Join(parts[:1+r.IntN(len(parts))]...)
		}
		f := fileSpec{Mode: 0o644, HardlinkOf: -1, Mtime: mtimeFor(r), Seed: r.Uint64()}
		switch x := r.IntN(100); {
		case x < 2:
			f.Size = 0
		case x < 10:
			f.Size = 1 + r.Int64N(100)
		case x < 78:
			f.Size = logUniform(100, 8192)
		case x < 98:
			f.Size = logUniform(8192, 32768)
		default:
			f.Size = logUniform(32768, 512<<10)
		}
		switch x := r.IntN(100); {
		case x < 45:
			f.Kind = kProse
		case x < 60:
			f.Kind = kLog
		case x < 70:
			f.Kind = kSQL
		case x < 92:
			f.Kind = kRandom
		case x < 95:
			f.Kind = kSemi
		default:
			c := pool[r.IntN(len(pool))]
			f.Kind, f.Size, f.Seed = c.k, c.size, c.seed
			f.Rel = fmt.Sprintf("%s/%d-%s", dir, i, c.name)
		}
		if f.Rel == "" {
			e := exts[f.Kind]
			f.Rel = fmt.Sprintf("%s/%s-%d.%s", dir, vocab[r.IntN(len(vocab))], i, e[r.IntN(len(e))])
		}
		switch x := r.IntN(100); {
		case x < 10:
			f.Mode = 0o755
		case x < 12:
			f.Mode = 0o600
		}
		if r.IntN(20) == 0 {
			f.UID, f.GID = 1000, 1000
		}
		ds.Files = append(ds.Files, f)
	}
	// Symlinks (0.5%) and hard links (0.1%) to earlier files.
	for i := 0; i < nFiles/200; i++ {
		t := ds.Files[r.IntN(nFiles)]
		ds.Files = append(ds.Files, fileSpec{Rel: fmt.Sprintf("%s/link-%d", path.Dir(t.Rel), i), Symlink: path.Base(t.Rel),
			HardlinkOf: -1, Mtime: mtimeFor(r)})
	}
	for i := 0; i < nFiles/1000; i++ {
		j := r.IntN(nFiles)
		if ds.Files[j].HardlinkOf >= 0 || ds.Files[j].Symlink != "" {
			continue
		}
		ds.Files = append(ds.Files, fileSpec{Rel: fmt.Sprintf("%s/hardlink-%d", path.Dir(ds.Files[j].Rel), i), HardlinkOf: j})
	}
	for i := 0; i < nLeaves/100+1; i++ {
		ds.Empty = append(ds.Empty, path.Join(leaves[r.IntN(len(leaves))], fmt.Sprintf("empty-%d", i)))
	}
}

func splitPath(p string) []string {
	var parts []string
	for p != "." && p != "" {
		parts = append([]string{path.Base(p)}, parts...)
		p = path.Dir(p)
	}
	return parts
}

// finish fills Dirs and Total.
func (ds *dataset) finish() {
	set := map[string]bool{}
	addDir := func(d string) {
		for d != "." && d != "" && !set[d] {
			set[d] = true
			d = path.Dir(d)
		}
	}
	names := map[string]bool{}
	for _, f := range ds.Files {
		if names[f.Rel] {
			panic("gendata: two files named " + f.Rel)
		}
		names[f.Rel] = true
		addDir(path.Dir(f.Rel))
		if f.Symlink == "" && f.HardlinkOf < 0 {
			ds.Total += f.Size
		}
	}
	for _, d := range ds.Empty {
		addDir(d)
	}
	for d := range set {
		ds.Dirs = append(ds.Dirs, d)
	}
	sort.Strings(ds.Dirs) // parents sort before their children
}
