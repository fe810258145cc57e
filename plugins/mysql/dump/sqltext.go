package dump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

const hexDigits = "0123456789ABCDEF"

// appendQuoted appends s as a single-quoted literal, escaped as
// mysql_real_escape_string does: NUL, newline, carriage return, backslash,
// both quotes and ^Z get a backslash. Every other byte is copied as is, so
// with the connection character set binary the column receives exactly
// the bytes it held. No raw newline is ever written, which keeps every
// INSERT on one line.
func appendQuoted(b, s []byte) []byte {
	b = append(b, '\'')
	for {
		i := indexSpecial(s)
		if i < 0 {
			b = append(b, s...)
			break
		}
		b = append(b, s[:i]...)
		switch c := s[i]; c {
		case 0:
			b = append(b, '\\', '0')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0x1a:
			b = append(b, '\\', 'Z')
		default: // \ ' "
			b = append(b, '\\', c)
		}
		s = s[i+1:]
	}
	return append(b, '\'')
}

// special marks the bytes appendQuoted escapes.
var special = func() (t [256]bool) {
	for _, c := range []byte{0, '\n', '\r', 0x1a, '\\', '\'', '"'} {
		t[c] = true
	}
	return
}()

func indexSpecial(s []byte) int {
	for i, c := range s {
		if special[c] {
			return i
		}
	}
	return -1
}

// appendHex appends s as a hexadecimal literal (X” when empty).
func appendHex(b, s []byte) []byte {
	if len(s) == 0 {
		return append(b, "X''"...)
	}
	b = append(b, '0', 'x')
	for _, c := range s {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// Splitter cuts a SQL script into statements the way the mariadb client
// does: a statement ends at the current delimiter outside quotes,
// backticks and comments; a DELIMITER line changes the delimiter.
// Comment-only and empty statements are dropped. The slice Next returns
// is valid until the next call.
type Splitter struct {
	r     *bufio.Reader
	delim []byte
	buf   []byte
	// OneLineInserts: the script comes from Dump, whose INSERT statements
	// are each one line ending in ";", so they are taken whole without
	// lexing.
	OneLineInserts bool
}

// NewSplitter reads statements from r.
func NewSplitter(r io.Reader) *Splitter {
	return &Splitter{r: bufio.NewReaderSize(r, 1<<20), delim: []byte(";")}
}

// Next returns the next statement without its delimiter, or io.EOF.
func (s *Splitter) Next() ([]byte, error) {
	for {
		stmt, err := s.next()
		if err != nil {
			return nil, err
		}
		if stmt == nil {
			continue
		}
		return stmt, nil
	}
}

// readLine reads one line including its newline (none at EOF).
func (s *Splitter) readLine(dst []byte) ([]byte, error) {
	for {
		frag, err := s.r.ReadSlice('\n')
		dst = append(dst, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return dst, err
	}
}

// next returns one statement, or nil for a comment or a DELIMITER line.
func (s *Splitter) next() ([]byte, error) {
	s.buf = s.buf[:0]
	// Skip blank space and line comments before a statement.
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			continue
		}
		_ = s.r.UnreadByte()
		p, _ := s.r.Peek(3)
		if len(p) > 0 && p[0] == '#' || len(p) >= 3 && p[0] == '-' && p[1] == '-' && (p[2] == ' ' || p[2] == '\t' || p[2] == '\n' || p[2] == '\r') {
			if _, err := s.readLine(s.buf[:0]); err != nil {
				return nil, err
			}
			continue
		}
		break
	}
	if s.OneLineInserts && len(s.delim) == 1 && s.delim[0] == ';' {
		if p, _ := s.r.Peek(12); bytes.Equal(p, []byte("INSERT INTO ")) {
			line, err := s.readLine(s.buf)
			s.buf = line
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > 0 && line[len(line)-1] == ';' {
				return line[:len(line)-1], nil
			}
			if err == nil || err == io.EOF {
				return nil, errors.New("malformed dump: an INSERT line does not end with ';'")
			}
			return nil, err
		}
	}
	if p, _ := s.r.Peek(10); len(p) >= 10 && bytes.EqualFold(p[:10], []byte("DELIMITER ")) {
		line, err := s.readLine(s.buf)
		if err != nil && err != io.EOF {
			return nil, err
		}
		d := bytes.TrimSpace(line[10:])
		if len(d) == 0 {
			return nil, errors.New("DELIMITER without a delimiter")
		}
		s.delim = append(s.delim[:0], d...)
		return nil, nil
	}
	var (
		quote    byte // ', " or ` while inside one
		comment  byte // '-' for a line comment, '*' for a block comment
		onlyComm = true
		prev     byte
	)
	for {
		c, err := s.r.ReadByte()
		if err == io.EOF {
			if quote != 0 || comment == '*' {
				return nil, fmt.Errorf("unterminated %s at the end of the script", map[bool]string{true: "quoted string", false: "comment"}[quote != 0])
			}
			if onlyComm || len(bytes.TrimSpace(s.buf)) == 0 {
				return nil, io.EOF
			}
			return s.buf, nil
		}
		if err != nil {
			return nil, err
		}
		s.buf = append(s.buf, c)
		switch {
		case comment == '-':
			if c == '\n' {
				comment = 0
			}
		case comment == '*':
			if c == '/' && prev == '*' {
				comment = 0
				c = 0 // a closing "*/" does not start anything
			}
		case quote != 0:
			if c == '\\' && quote != '`' {
				n, err := s.r.ReadByte()
				if err != nil {
					return nil, fmt.Errorf("unterminated quoted string at the end of the script")
				}
				s.buf = append(s.buf, n)
				c = 0
			} else if c == quote {
				quote = 0
			}
		default:
			switch {
			case c == '\'' || c == '"' || c == '`':
				quote, onlyComm = c, false
			case c == '#':
				comment = '-'
			case c == '-' && prev == '-':
				// "--" followed by a blank starts a comment.
				if n, _ := s.r.Peek(1); len(n) == 0 || n[0] == ' ' || n[0] == '\t' || n[0] == '\n' || n[0] == '\r' {
					comment = '-'
				}
			case c == '*' && prev == '/':
				// /*! ... */ is executable: it counts as content.
				if n, _ := s.r.Peek(1); len(n) == 1 && n[0] == '!' {
					onlyComm = false
				}
				comment = '*'
			case c == s.delim[0] && s.delimAt():
				stmt := s.buf[:len(s.buf)-1]
				if onlyComm {
					return nil, nil
				}
				return stmt, nil
			case c != ' ' && c != '\n' && c != '\t' && c != '\r' && c != '-' && c != '/':
				onlyComm = false
			}
		}
		prev = c
	}
}

// delimAt reports whether the rest of a multi-byte delimiter follows; it
// consumes it (without adding it to the statement) when it does.
func (s *Splitter) delimAt() bool {
	if len(s.delim) == 1 {
		return true
	}
	rest := s.delim[1:]
	p, _ := s.r.Peek(len(rest))
	if !bytes.Equal(p, rest) {
		return false
	}
	_, _ = s.r.Discard(len(rest))
	return true
}
