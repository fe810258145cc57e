package wordpress

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WPConfig is what the source reads from a site's wp-config.php.
type WPConfig struct {
	Path        string // the file read
	DBName      string
	DBUser      string
	DBPassword  string // never printed
	DBHost      string // as written: host, host:port, host:/socket, [v6]:port
	DBCharset   string // "" when not defined
	TablePrefix string
	// Unreadable holds, per key that is present but whose value is not a
	// plain literal (getenv(...), a constant, an interpolating string),
	// the error naming its line. Keys missing altogether are absent from
	// both the fields and this map; Missing reports them.
	Unreadable map[string]error
	found      map[string]bool
}

// Keys the parser looks for.
const (
	keyDBName   = "DB_NAME"
	keyDBUser   = "DB_USER"
	keyDBPass   = "DB_PASSWORD"
	keyDBHost   = "DB_HOST"
	keyCharset  = "DB_CHARSET"
	keyPrefix   = "$table_prefix"
	wpConfigPHP = "wp-config.php"
)

// Has reports whether key was found with a readable value.
func (c *WPConfig) Has(key string) bool { return c.found[key] }

// Need returns an error for a key that is missing or unreadable: the
// error names the file and, for an unreadable value, its line.
func (c *WPConfig) Need(key string) error {
	if c.found[key] {
		return nil
	}
	if err := c.Unreadable[key]; err != nil {
		return err
	}
	if key == keyPrefix {
		return fmt.Errorf("%s: no $table_prefix = '...'; assignment", c.Path)
	}
	return fmt.Errorf("%s: no define('%s', ...)", c.Path, key)
}

// FindWPConfig returns the wp-config.php of the WordPress root: root's
// own, or, as WordPress itself allows, the one in root's parent directory
// when root has none and the parent is not another WordPress root (has no
// wp-settings.php).
func FindWPConfig(root string) (string, error) {
	p := filepath.Join(root, wpConfigPHP)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !os.IsNotExist(err) {
		return "", err
	}
	parent := filepath.Dir(root)
	up := filepath.Join(parent, wpConfigPHP)
	if _, err := os.Stat(up); err == nil {
		if _, err := os.Stat(filepath.Join(parent, "wp-settings.php")); os.IsNotExist(err) {
			return up, nil
		}
	}
	return "", fmt.Errorf("%s does not exist", p)
}

// ReadWPConfig reads and parses a wp-config.php file.
func ReadWPConfig(path string) (*WPConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s does not exist", path)
		}
		return nil, err
	}
	return ParseWPConfig(path, b)
}

// ParseWPConfig reads the database settings out of wp-config.php source
// without running PHP. It understands what people write in that file:
// define( 'X', 'v' ); with single or double quotes, any spacing, comments
// (//, #, /* */) anywhere between tokens, escaped quotes, strings joined
// with '.', and $table_prefix = 'wp_';. PHP code before the first <?php
// and after ?> is skipped.
//
// The first define of a constant wins (PHP ignores a second define); the
// last assignment of $table_prefix wins. A value that is not a literal
// (getenv('X'), a constant, "$var" interpolation, a heredoc) is recorded
// as unreadable with its line, so the source can say exactly which line
// it cannot read unless the operator overrides that setting. A file
// whose tokens cannot be read at all (an unterminated string or comment)
// is an error naming the line.
func ParseWPConfig(path string, src []byte) (*WPConfig, error) {
	toks, err := lexPHP(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &WPConfig{Path: path, Unreadable: map[string]error{}, found: map[string]bool{}}
	set := func(key, val string) {
		switch key {
		case keyDBName:
			c.DBName = val
		case keyDBUser:
			c.DBUser = val
		case keyDBPass:
			c.DBPassword = val
		case keyDBHost:
			c.DBHost = val
		case keyCharset:
			c.DBCharset = val
		case keyPrefix:
			c.TablePrefix = val
		}
		c.found[key] = true
		delete(c.Unreadable, key)
	}
	wanted := map[string]bool{keyDBName: true, keyDBUser: true, keyDBPass: true, keyDBHost: true, keyCharset: true}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tIdent && strings.EqualFold(t.text, "define") && i+1 < len(toks) && toks[i+1].is("("):
			// define ( 'NAME' , value ) ;
			if i+3 >= len(toks) || toks[i+2].kind != tString || !toks[i+3].is(",") {
				continue
			}
			name := toks[i+2].text
			if !wanted[name] {
				continue
			}
			val, end, ok := literal(toks, i+4, ")")
			if c.found[name] || c.Unreadable[name] != nil {
				i = end
				continue // the first define wins
			}
			if !ok {
				c.Unreadable[name] = fmt.Errorf("%s line %d: cannot read the value of %s (%s): only plain quoted strings can be read without running PHP", path, t.line, name, excerpt(src, t.line))
				i = end
				continue
			}
			set(name, val)
			i = end
		case t.kind == tVar && t.text == keyPrefix && i+1 < len(toks) && toks[i+1].is("="):
			val, end, ok := literal(toks, i+2, ";")
			if !ok {
				c.Unreadable[keyPrefix] = fmt.Errorf("%s line %d: cannot read $table_prefix (%s): only plain quoted strings can be read without running PHP", path, t.line, excerpt(src, t.line))
				c.found[keyPrefix] = false
				c.TablePrefix = ""
				i = end
				continue
			}
			set(keyPrefix, val)
			i = end
		}
	}
	return c, nil
}

// literal reads a value made of string literals joined with '.' from
// toks[i], up to the closing token close; it returns the index of the
// last token it looked at and whether the value was a plain literal.
func literal(toks []token, i int, close string) (string, int, bool) {
	var b strings.Builder
	want := true // a string is expected next
	ok := true
	depth := 0
	for ; i < len(toks); i++ {
		t := toks[i]
		switch {
		case depth == 0 && (t.is(close) || t.is(";")):
			if want {
				ok = false
			}
			return b.String(), i, ok
		case t.is("("):
			depth++
			ok = false
		case t.is(")"):
			depth--
			ok = false
		case want && t.kind == tString && !t.interp:
			b.WriteString(t.text)
			want = false
		case !want && t.is("."):
			want = true
		default:
			ok = false
		}
	}
	return b.String(), len(toks) - 1, false
}

func excerpt(src []byte, line int) string {
	lines := strings.Split(string(src), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	l := strings.TrimSpace(lines[line-1])
	// Never show a password: cut at the first comma of a define.
	if i := strings.Index(l, ","); i >= 0 {
		l = l[:i+1] + " ..."
	}
	if len(l) > 80 {
		l = l[:80] + "..."
	}
	return strconv.Quote(l)
}

// ---------------------------------------------------------------- lexer

type tokKind int

const (
	tIdent  tokKind = iota + 1
	tVar            // $name
	tString         // a quoted string, unescaped
	tPunct          // one character
	tOther          // numbers and anything else
)

type token struct {
	kind   tokKind
	text   string
	line   int
	interp bool // a double-quoted string with a $variable inside
}

func (t token) is(p string) bool { return t.kind == tPunct && t.text == p }

// lexPHP tokenizes the PHP parts of src, enough for wp-config.php.
func lexPHP(src []byte) ([]token, error) {
	var toks []token
	s := string(src)
	line := 1
	i := 0
	inPHP := false
	for i < len(s) {
		if !inPHP {
			j := strings.Index(s[i:], "<?php")
			k := strings.Index(s[i:], "<?=")
			if j < 0 && k < 0 {
				break
			}
			if j < 0 || (k >= 0 && k < j) {
				line += strings.Count(s[i:i+k], "\n")
				i += k + 3
			} else {
				line += strings.Count(s[i:i+j], "\n")
				i += j + 5
			}
			inPHP = true
			continue
		}
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '?' && strings.HasPrefix(s[i:], "?>"):
			inPHP = false
			i += 2
		case c == '#' || (c == '/' && strings.HasPrefix(s[i:], "//")):
			// A line comment ends at the newline or at ?>.
			for i < len(s) && s[i] != '\n' && !strings.HasPrefix(s[i:], "?>") {
				i++
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += 2 + end + 2
		case c == '\'':
			start := line
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '\''; j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '\'' || s[j+1] == '\\') {
					j++
				}
				if s[j] == '\n' {
					line++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("line %d: unterminated string", start)
			}
			toks = append(toks, token{kind: tString, text: b.String(), line: start})
			i = j + 1
		case c == '"':
			start := line
			text, n, interp, nl, err := doubleQuoted(s[i:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", start, err)
			}
			line += nl
			toks = append(toks, token{kind: tString, text: text, line: start, interp: interp})
			i += n
		case c == '$' && i+1 < len(s) && isIdentStart(s[i+1]):
			j := i + 1
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tVar, text: s[i:j], line: line})
			i = j
		case isIdentStart(c) || c == '\\':
			j := i + 1
			for j < len(s) && (isIdent(s[j]) || s[j] == '\\') {
				j++
			}
			name := strings.TrimPrefix(s[i:j], "\\") // \define( is define(
			toks = append(toks, token{kind: tIdent, text: name, line: line})
			i = j
		case c == '<' && strings.HasPrefix(s[i:], "<<<"):
			// A heredoc or nowdoc: skip to its closing identifier.
			j := i + 3
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			nl := strings.IndexByte(s[j:], '\n')
			if nl < 0 {
				return nil, fmt.Errorf("line %d: unterminated heredoc", line)
			}
			id := strings.Trim(strings.TrimSpace(s[j:j+nl]), `'"`)
			rest := s[j+nl+1:]
			end := -1
			off := 0
			for _, l := range strings.SplitAfter(rest, "\n") {
				if strings.HasPrefix(strings.TrimLeft(l, " \t"), id) {
					end = off + strings.Index(l, id) + len(id)
					break
				}
				off += len(l)
			}
			if id == "" || end < 0 {
				return nil, fmt.Errorf("line %d: unterminated heredoc", line)
			}
			toks = append(toks, token{kind: tOther, text: "<<<", line: line})
			line += strings.Count(s[i:j+nl+1+end], "\n")
			i = j + nl + 1 + end
		case c < utf8.RuneSelf && strings.IndexByte("(),;=.[]{}", c) >= 0:
			toks = append(toks, token{kind: tPunct, text: string(c), line: line})
			i++
		default:
			toks = append(toks, token{kind: tOther, text: string(c), line: line})
			i++
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// doubleQuoted reads a "..." string at the start of s with PHP's escapes.
// It returns the text, the bytes consumed, whether it interpolates a
// variable, and the newlines inside.
func doubleQuoted(s string) (string, int, bool, int, error) {
	var b strings.Builder
	interp := false
	nl := 0
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch c {
		case '"':
			return b.String(), j + 1, interp, nl, nil
		case '\n':
			nl++
			b.WriteByte(c)
		case '$':
			if j+1 < len(s) && (isIdentStart(s[j+1]) || s[j+1] == '{') {
				interp = true
			}
			b.WriteByte(c)
		case '{':
			if j+1 < len(s) && s[j+1] == '$' {
				interp = true
			}
			b.WriteByte(c)
		case '\\':
			if j+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			j++
			switch e := s[j]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'v':
				b.WriteByte('\v')
			case 'e':
				b.WriteByte(0x1b)
			case 'f':
				b.WriteByte('\f')
			case '\\', '$', '"':
				b.WriteByte(e)
			case 'x':
				k := j + 1
				for k < len(s) && k < j+3 && isHex(s[k]) {
					k++
				}
				if k == j+1 {
					b.WriteString(`\x`)
					continue
				}
				v, _ := strconv.ParseUint(s[j+1:k], 16, 8)
				b.WriteByte(byte(v))
				j = k - 1
			case 'u':
				if j+1 < len(s) && s[j+1] == '{' {
					end := strings.IndexByte(s[j:], '}')
					if end > 0 {
						v, err := strconv.ParseUint(s[j+2:j+end], 16, 32)
						if err == nil {
							b.WriteRune(rune(v))
							j += end
							continue
						}
					}
				}
				b.WriteString(`\u`)
			default:
				if e >= '0' && e <= '7' {
					k := j
					for k < len(s) && k < j+3 && s[k] >= '0' && s[k] <= '7' {
						k++
					}
					v, _ := strconv.ParseUint(s[j:k], 8, 16)
					b.WriteByte(byte(v))
					j = k - 1
					continue
				}
				if e == '\n' {
					nl++
				}
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false, 0, fmt.Errorf("unterminated string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
