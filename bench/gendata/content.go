package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// kind is the kind of content of a generated file.
type kind uint8

const (
	kRandom kind = iota // incompressible bytes (media, archives)
	kProse              // text-like: Zipf-distributed words in lines and paragraphs
	kLog                // web server log lines
	kSQL                // SQL dump lines: repetitive records
	kSemi               // half random, half repeated bytes (PDF/office-like)
)

func (k kind) String() string {
	return [...]string{"random", "prose", "log", "sql", "semi"}[k]
}

// newRand returns a generator determined by the seeds.
func newRand(seeds ...uint64) *rand.Rand {
	var key [32]byte
	h := uint64(0x9e3779b97f4a7c15)
	for i, s := range seeds {
		h = mix(h ^ s + uint64(i))
	}
	for i := 0; i < 4; i++ {
		h = mix(h + uint64(i)*0x632be59bd9b4e019)
		binary.LittleEndian.PutUint64(key[i*8:], h)
	}
	return rand.New(rand.NewChaCha8(key))
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashString is FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// vocab is a fixed list of pseudo-words, the same for every seed.
var vocab = func() []string {
	syl := []string{"ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "an", "el", "in", "or", "us",
		"pre", "con", "ter", "ing", "ed", "ly", "st", "th", "ch", "re", "de", "ba", "po", "xi", "qu",
		"wor", "dpr", "ess", "php", "the", "and", "for", "wit", "ion", "ent", "al", "er"}
	r := newRand(42, 7)
	seen := map[string]bool{}
	var out []string
	for len(out) < 3000 {
		n := 1 + r.IntN(4)
		w := ""
		for i := 0; i < n; i++ {
			w += syl[r.IntN(len(syl))]
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}()

// contentReader returns an endless deterministic stream of content of kind
// k; the first size bytes of it are a file's content.
func contentReader(k kind, seed uint64) io.Reader {
	r := newRand(seed, uint64(k))
	switch k {
	case kRandom:
		return &randomReader{src: rand.NewChaCha8(seedKey(seed))}
	case kSemi:
		return &semiReader{src: rand.NewChaCha8(seedKey(seed)), r: r}
	default:
		return &textReader{k: k, r: r, zipf: rand.NewZipf(r, 1.15, 2, uint64(len(vocab)-1)),
			t: 1704067200 + r.Int64N(300*86400)}
	}
}

func seedKey(seed uint64) [32]byte {
	var key [32]byte
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(key[i*8:], mix(seed+uint64(i)*0x9e3779b97f4a7c15))
	}
	return key
}

type randomReader struct{ src *rand.ChaCha8 }

func (r *randomReader) Read(p []byte) (int, error) { return r.src.Read(p) }

// semiReader alternates 2 KiB of random bytes with 2 KiB of a repeated
// short pattern, so zstd saves about half.
type semiReader struct {
	src *rand.ChaCha8
	r   *rand.Rand
	buf []byte
	pos int
}

func (s *semiReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.pos >= len(s.buf) {
			if s.buf == nil {
				s.buf = make([]byte, 4096)
			}
			_, _ = s.src.Read(s.buf[:2048])
			pat := s.r.Uint64()
			for i := 2048; i < 4096; i += 8 {
				binary.LittleEndian.PutUint64(s.buf[i:], pat)
			}
			s.pos = 0
		}
		c := copy(p[n:], s.buf[s.pos:])
		s.pos += c
		n += c
	}
	return n, nil
}

// textReader produces text line by line.
type textReader struct {
	k    kind
	r    *rand.Rand
	zipf *rand.Zipf
	buf  []byte
	pos  int
	t    int64 // log time, seconds
	id   int64 // sql row id
}

func (g *textReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if g.pos >= len(g.buf) {
			g.buf = g.buf[:0]
			g.pos = 0
			switch g.k {
			case kLog:
				g.logLine()
			case kSQL:
				g.sqlLine()
			default:
				g.proseLine()
			}
		}
		c := copy(p[n:], g.buf[g.pos:])
		g.pos += c
		n += c
	}
	return n, nil
}

func (g *textReader) word() string { return vocab[g.zipf.Uint64()] }

func (g *textReader) words(n int) {
	for i := 0; i < n; i++ {
		if i > 0 {
			g.buf = append(g.buf, ' ')
		}
		g.buf = append(g.buf, g.word()...)
	}
}

func (g *textReader) proseLine() {
	n := 6 + g.r.IntN(10)
	for i := 0; i < n; i++ {
		if i > 0 {
			g.buf = append(g.buf, ' ')
		}
		w := g.word()
		if i == 0 && len(w) > 0 {
			g.buf = append(g.buf, w[0]-'a'+'A')
			g.buf = append(g.buf, w[1:]...)
		} else {
			g.buf = append(g.buf, w...)
		}
		switch g.r.IntN(14) {
		case 0:
			g.buf = append(g.buf, ',')
		case 1:
			g.buf = append(g.buf, '.')
		}
	}
	g.buf = append(g.buf, ".\n"...)
	if g.r.IntN(6) == 0 {
		g.buf = append(g.buf, '\n')
	}
}

var (
	methods  = []string{"GET", "GET", "GET", "GET", "POST", "HEAD"}
	statuses = []int{200, 200, 200, 200, 200, 304, 301, 404, 500}
	agents   = []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Googlebot/2.1 (+http://www.google.com/bot.html)",
		"curl/7.88.1",
	}
	months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

func (g *textReader) logLine() {
	g.t += int64(g.r.IntN(3))
	sec := g.t % 86400
	day := g.t / 86400
	// Civil date from days since the epoch (Howard Hinnant's algorithm).
	z := day + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
		y++
	}
	b := g.buf
	b = strconv.AppendInt(b, int64(10+g.r.IntN(200)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(g.r.IntN(256)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(g.r.IntN(256)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(1+g.r.IntN(254)), 10)
	b = fmt.Appendf(b, " - - [%02d/%s/%d:%02d:%02d:%02d +0000] \"%s /", d, months[m-1], y, sec/3600, sec/60%60, sec%60,
		methods[g.r.IntN(len(methods))])
	g.buf = b
	switch g.r.IntN(4) {
	case 0:
		g.buf = fmt.Appendf(g.buf, "wp-content/uploads/%d/%02d/%s-%d.jpg", 2019+g.r.IntN(6), 1+g.r.IntN(12), g.word(), g.r.IntN(500))
	case 1:
		g.buf = append(g.buf, "wp-admin/admin-ajax.php"...)
	default:
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, '/')
		g.buf = append(g.buf, g.word()...)
		g.buf = append(g.buf, '/')
	}
	g.buf = fmt.Appendf(g.buf, " HTTP/1.1\" %d %d \"-\" \"%s\"\n", statuses[g.r.IntN(len(statuses))], g.r.IntN(90000),
		agents[g.r.IntN(len(agents))])
}

func (g *textReader) sqlLine() {
	g.id++
	g.buf = fmt.Appendf(g.buf, "INSERT INTO `wp_posts` VALUES (%d,1,'2024-%02d-%02d %02d:%02d:00','", g.id,
		1+g.r.IntN(12), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60))
	g.words(8 + g.r.IntN(40))
	g.buf = append(g.buf, "','"...)
	g.words(2 + g.r.IntN(5))
	g.buf = append(g.buf, "','','publish','open','open','','"...)
	g.buf = append(g.buf, g.word()...)
	g.buf = append(g.buf, "','','',0,'post','',0);\n"...)
}
