// Package pathmatch matches paths against gitignore-like exclude patterns.
//
// Paths are relative to an item root (the directory being backed up),
// slash-separated, without a leading slash: "var/cache/x.db". Patterns
// follow .gitignore:
//
//	"*"      any run of characters except '/'
//	"?"      one character except '/'
//	"[a-z]"  one character in the class; "[!a-z]" or "[^a-z]" negates it
//	"\x"     the character x literally
//	"**"     as a whole path segment: any number of segments ("**/tmp",
//	         "a/**/b"); a trailing "/**" matches everything inside
//	"/x"     a leading '/' anchors the pattern to the item root; a pattern
//	         with a '/' in its middle is anchored too, one without any
//	         matches at every depth ("*.tmp")
//	"x/"     a trailing '/' matches directories only
//	"!x"     re-includes what an earlier pattern excluded
//
// The last pattern that matches decides. As in git, a path inside an
// excluded directory cannot be re-included: a walker never descends into
// the directory, and Excluded checks the parents for the same reason.
package pathmatch

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Pattern is one compiled pattern.
type Pattern struct {
	text    string
	negate  bool
	dirOnly bool
	segs    []segment
	// mustHaveMore: the pattern ended in "/**", which matches what is
	// inside a directory but not the directory itself.
	mustHaveMore bool
}

// segment matches one path segment, or any number of them (doubleStar).
type segment struct {
	doubleStar bool
	literal    string // set when the segment has no wildcards
	isLiteral  bool
	toks       []token
}

type tokKind uint8

const (
	tokRune  tokKind = iota
	tokAny           // ?
	tokStar          // *
	tokClass         // [...]
)

type token struct {
	kind   tokKind
	r      rune
	negate bool
	ranges []runeRange
}

type runeRange struct{ lo, hi rune }

// Compile parses one pattern.
func Compile(pattern string) (*Pattern, error) {
	p := &Pattern{text: pattern}
	s := pattern
	if strings.HasPrefix(s, "!") {
		p.negate = true
		s = s[1:]
	}
	for strings.HasSuffix(s, "/") && !strings.HasSuffix(s, `\/`) {
		p.dirOnly = true
		s = s[:len(s)-1]
	}
	anchored := false
	if strings.HasPrefix(s, "/") {
		anchored = true
		s = strings.TrimLeft(s, "/")
	}
	if s == "" {
		return nil, fmt.Errorf("pattern %q matches nothing", pattern)
	}
	if strings.Contains(s, "/") {
		anchored = true
	}
	var raw []string
	for _, part := range strings.Split(s, "/") {
		if part != "" { // "a//b" is "a/b"
			raw = append(raw, part)
		}
	}
	if !anchored {
		p.segs = append(p.segs, segment{doubleStar: true})
	}
	for _, part := range raw {
		if part == "**" {
			// "a/**/**/b" is "a/**/b".
			if n := len(p.segs); n > 0 && p.segs[n-1].doubleStar {
				continue
			}
			p.segs = append(p.segs, segment{doubleStar: true})
			continue
		}
		seg, err := compileSegment(part)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		p.segs = append(p.segs, seg)
	}
	p.mustHaveMore = len(raw) > 1 && raw[len(raw)-1] == "**"
	return p, nil
}

func compileSegment(s string) (segment, error) {
	var toks []token
	literal := true
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\\':
			if i+w >= len(s) {
				return segment{}, fmt.Errorf("trailing backslash")
			}
			r2, w2 := utf8.DecodeRuneInString(s[i+w:])
			toks = append(toks, token{kind: tokRune, r: r2})
			i += w + w2
			continue
		case '?':
			toks = append(toks, token{kind: tokAny})
			literal = false
		case '*':
			literal = false
			if n := len(toks); n > 0 && toks[n-1].kind == tokStar {
				break // "**" inside a segment is "*"
			}
			toks = append(toks, token{kind: tokStar})
		case '[':
			tok, n, err := compileClass(s[i:])
			if err != nil {
				return segment{}, err
			}
			toks = append(toks, tok)
			literal = false
			i += n
			continue
		default:
			toks = append(toks, token{kind: tokRune, r: r})
		}
		i += w
	}
	seg := segment{toks: toks}
	if literal {
		var b strings.Builder
		for _, t := range toks {
			b.WriteRune(t.r)
		}
		seg.isLiteral, seg.literal = true, b.String()
	}
	return seg, nil
}

// compileClass parses a class starting at s[0] == '[' and returns how many
// bytes it used.
func compileClass(s string) (token, int, error) {
	tok := token{kind: tokClass}
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		tok.negate = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return token{}, 0, fmt.Errorf("unterminated character class %q", s)
		}
		if s[i] == ']' && !first {
			return tok, i + 1, nil
		}
		first = false
		lo, w, err := classRune(s, i)
		if err != nil {
			return token{}, 0, err
		}
		i += w
		hi := lo
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			var w2 int
			hi, w2, err = classRune(s, i+1)
			if err != nil {
				return token{}, 0, err
			}
			i += 1 + w2
			if hi < lo {
				return token{}, 0, fmt.Errorf("character class range %c-%c goes backwards", lo, hi)
			}
		}
		tok.ranges = append(tok.ranges, runeRange{lo, hi})
	}
}

func classRune(s string, i int) (rune, int, error) {
	if s[i] == '\\' {
		if i+1 >= len(s) {
			return 0, 0, fmt.Errorf("unterminated character class %q", s)
		}
		r, w := utf8.DecodeRuneInString(s[i+1:])
		return r, 1 + w, nil
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	return r, w, nil
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.text }

// Negated reports whether the pattern re-includes (starts with '!').
func (p *Pattern) Negated() bool { return p.negate }

// Match reports whether rel (relative, slash-separated) matches the
// pattern, ignoring its negation. isDir says whether rel is a directory.
func (p *Pattern) Match(rel string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	parts := splitPath(rel)
	if len(parts) == 0 {
		return false // the root itself is never matched
	}
	return p.matchParts(parts)
}

func (p *Pattern) matchParts(parts []string) bool {
	// memo[i*(n+1)+j] caches whether segs[i:] matches parts[j:]: 0 unknown,
	// 1 no, 2 yes. It keeps "**" patterns linear in practice.
	n := len(parts)
	memo := make([]uint8, (len(p.segs)+1)*(n+1))
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := i*(n+1) + j
		if memo[k] != 0 {
			return memo[k] == 2
		}
		var ok bool
		switch {
		case i == len(p.segs):
			ok = j == n
		case p.segs[i].doubleStar:
			if i == len(p.segs)-1 {
				// A final "**" swallows the rest; after "/**" there must
				// be something inside.
				ok = !p.mustHaveMore || j < n
				break
			}
			for jj := j; jj <= n && !ok; jj++ {
				ok = match(i+1, jj)
			}
		default:
			ok = j < n && p.segs[i].match(parts[j]) && match(i+1, j+1)
		}
		if ok {
			memo[k] = 2
		} else {
			memo[k] = 1
		}
		return ok
	}
	return match(0, 0)
}

func splitPath(rel string) []string {
	rel = strings.Trim(rel, "/")
	if rel == "" || rel == "." {
		return nil
	}
	return strings.Split(rel, "/")
}

// match matches one segment: '*' may stretch over any characters of the
// name; on a mismatch, the last '*' takes one more character and the
// rest is tried again. Every other token consumes exactly one character,
// so going back to the last star is enough.
func (s *segment) match(name string) bool {
	if s.isLiteral {
		return s.literal == name
	}
	ti, ni := 0, 0
	starTi, starNi := -1, 0
	for ni < len(name) || ti < len(s.toks) {
		if ti < len(s.toks) {
			t := &s.toks[ti]
			if t.kind == tokStar {
				starTi, starNi = ti, ni
				ti++
				continue
			}
			if ni < len(name) {
				r, w := utf8.DecodeRuneInString(name[ni:])
				if t.matchRune(r) {
					ti++
					ni += w
					continue
				}
			}
		}
		if starTi < 0 || starNi >= len(name) {
			return false
		}
		_, w := utf8.DecodeRuneInString(name[starNi:])
		starNi += w
		ti, ni = starTi+1, starNi
	}
	return true
}

func (t *token) matchRune(r rune) bool {
	switch t.kind {
	case tokRune:
		return t.r == r
	case tokAny:
		return true
	case tokClass:
		in := false
		for _, rg := range t.ranges {
			if r >= rg.lo && r <= rg.hi {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

// Matcher applies a list of patterns in order; the last match decides.
type Matcher struct {
	pats []*Pattern
}

// New compiles patterns into a Matcher. An empty list excludes nothing.
func New(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, s := range patterns {
		p, err := Compile(s)
		if err != nil {
			return nil, err
		}
		m.pats = append(m.pats, p)
	}
	return m, nil
}

// Empty reports whether the matcher has no patterns.
func (m *Matcher) Empty() bool { return m == nil || len(m.pats) == 0 }

// Match reports whether rel is excluded by the patterns, assuming its
// parent directories are not (a walker that skips excluded directories
// calls Match for each entry it meets).
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m.Empty() {
		return false
	}
	parts := splitPath(rel)
	if len(parts) == 0 {
		return false
	}
	for i := len(m.pats) - 1; i >= 0; i-- {
		p := m.pats[i]
		if p.dirOnly && !isDir {
			continue
		}
		if p.matchParts(parts) {
			return !p.negate
		}
	}
	return false
}

// Excluded reports whether rel is excluded, itself or because one of its
// parent directories is: what a walk from the root would decide.
func (m *Matcher) Excluded(rel string, isDir bool) bool {
	if m.Empty() {
		return false
	}
	parts := splitPath(rel)
	for i := 1; i < len(parts); i++ {
		if m.Match(strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	return m.Match(rel, isDir)
}

// Escape quotes s so that it matches itself literally inside a pattern,
// e.g. to exclude one known path: "/" + Escape("a/b[1]") + "/".
func Escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '*', '?', '[', '!':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ReadPatterns reads an exclude file: one pattern a line; blank lines and
// lines starting with '#' are ignored; trailing spaces are dropped unless
// escaped with a backslash (as in .gitignore); "\#" starts a pattern with
// a literal '#'. Every pattern is checked, and an error names its line.
func ReadPatterns(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		s = trimTrailingSpaces(s)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if _, err := Compile(s); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// trimTrailingSpaces drops trailing spaces and tabs, keeping one that a
// backslash escapes.
func trimTrailingSpaces(s string) string {
	for len(s) > 0 {
		c := s[len(s)-1]
		if c != ' ' && c != '\t' {
			break
		}
		// Count the backslashes before the space: an odd number escapes it.
		n := 0
		for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
			n++
		}
		if n%2 == 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
