package pathmatch

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		path    string
		isDir   bool
		want    bool
	}{
		{"star matches within a name", "*.log", "error.log", false, true},
		{"unanchored pattern matches at any depth", "*.log", "var/log/error.log", false, true},
		{"star does not match a slash", "a*c", "ab/c", false, false},
		{"star may match nothing", "a*c", "ac", false, true},
		{"question mark is one character", "file?.txt", "file1.txt", false, true},
		{"question mark is not zero characters", "file?.txt", "file.txt", false, false},
		{"question mark is one rune, not one byte", "?.txt", "é.txt", false, true},
		{"class", "file[0-9].txt", "file7.txt", false, true},
		{"class mismatch", "file[0-9].txt", "filex.txt", false, false},
		{"negated class with bang", "file[!0-9].txt", "filex.txt", false, true},
		{"negated class with caret", "file[^0-9].txt", "file1.txt", false, false},
		{"closing bracket first in class is literal", "[]a]", "]", false, true},
		{"escaped star is literal", `a\*b`, "a*b", false, true},
		{"escaped star does not glob", `a\*b`, "axb", false, false},
		{"leading slash anchors to the root", "/tmp", "tmp", true, true},
		{"anchored pattern does not match deeper", "/tmp", "var/tmp", true, false},
		{"slash in the middle anchors", "var/tmp", "x/var/tmp", true, false},
		{"slash in the middle matches from the root", "var/tmp", "var/tmp", true, true},
		{"trailing slash matches directories", "cache/", "home/u/cache", true, true},
		{"trailing slash does not match files", "cache/", "home/u/cache", false, false},
		{"leading double star matches any depth", "**/node_modules", "a/b/node_modules", true, true},
		{"leading double star matches at the root", "**/node_modules", "node_modules", true, true},
		{"middle double star matches zero directories", "a/**/b", "a/b", false, true},
		{"middle double star matches several directories", "a/**/b", "a/x/y/b", false, true},
		{"trailing double star matches inside", "logs/**", "logs/2024/x.log", false, true},
		{"trailing double star does not match the directory", "logs/**", "logs", true, false},
		{"double star inside a name is a star", "a**b", "axxb", false, true},
		{"double star inside a name stays in the segment", "a**b", "ax/xb", false, false},
		{"lone double star matches everything", "**", "a/b", false, true},
		{"root is never matched", "*", "", true, false},
		{"literal name", "core", "src/core", false, true},
		{"literal name must be whole", "core", "src/core.c", false, false},
		{"star after star backtracks", "*a*b", "xaxxaxb", false, true},
		{"match is case-sensitive", "*.LOG", "x.log", false, false},
		{"double slash is one slash", "a//b", "a/b", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tt.path, tt.isDir); got != tt.want {
				t.Fatalf("Compile(%q).Match(%q, dir=%v) = %v, want %v", tt.pattern, tt.path, tt.isDir, got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "matches nothing"},
		{"!", "matches nothing"},
		{"/", "matches nothing"},
		{"a[bc", "unterminated character class"},
		{`a\`, "trailing backslash"},
		{"[z-a]", "goes backwards"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error = %v, want %q", tt.pattern, err, tt.want)
		}
	}
}

func TestMatcherLastMatchDecides(t *testing.T) {
	m, err := New([]string{"*.log", "!keep.log", "/build/", "tmp/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		isDir bool
		want  bool
	}{
		{"excluded by a pattern", "a/error.log", false, true},
		{"re-included by a later negation", "a/keep.log", false, false},
		{"anchored directory", "build", true, true},
		{"anchored directory pattern spares a file of that name", "build", false, false},
		{"anchored directory pattern spares a deeper one", "src/build", true, false},
		{"unanchored directory", "x/tmp", true, true},
		{"not matched", "src/main.go", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Match(tt.path, tt.isDir); got != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestExcludedCannotReincludeInsideExcludedDirectory(t *testing.T) {
	m, err := New([]string{"cache/", "!cache/keep"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Excluded("cache/keep", false) {
		t.Error("a file inside an excluded directory was re-included")
	}
	if !m.Excluded("a/cache/x/y", false) {
		t.Error("a file deep inside an excluded directory is not excluded")
	}
	if m.Excluded("cachex/y", false) {
		t.Error("a sibling with a longer name is excluded")
	}
	var empty *Matcher
	if empty.Match("x", false) || empty.Excluded("x", false) {
		t.Error("a nil matcher excludes")
	}
}

func TestEscapeMatchesLiterally(t *testing.T) {
	names := []string{"a[1]", "what?", "*star*", `back\slash`, "!bang", "plain"}
	for _, n := range names {
		p, err := Compile("/" + Escape(n) + "/")
		if err != nil {
			t.Fatalf("Escape(%q): %v", n, err)
		}
		if !p.Match(n, true) {
			t.Errorf("escaped %q does not match itself", n)
		}
		if p.Negated() {
			t.Errorf("escaped %q is a negation", n)
		}
	}
	p, _ := Compile("/" + Escape("a[1]"))
	if p.Match("a1", false) {
		t.Error("escaped class still acts as a class")
	}
}

func TestReadPatterns(t *testing.T) {
	in := "# a comment\n\n*.log\r\n  \ntmp/   \nspace\\ \n\\#notcomment\n!keep.log\n"
	got, err := ReadPatterns(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*.log", "tmp/", `space\ `, `\#notcomment`, "!keep.log"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("ReadPatterns = %q, want %q", got, want)
	}
	m, _ := New(got)
	if !m.Match("#notcomment", false) || !m.Match("space ", false) {
		t.Error("escaped # or trailing space is not literal")
	}
	_, err = ReadPatterns(strings.NewReader("ok\nbad[\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error for a bad line = %v, want it to name line 2", err)
	}
}

func FuzzCompileAndMatch(f *testing.F) {
	f.Add("a/**/b", "a/x/b")
	f.Add("[!a-", "x")
	f.Add(`*\`, "y")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		p.Match(path, false)
		p.Match(path, true)
	})
}
