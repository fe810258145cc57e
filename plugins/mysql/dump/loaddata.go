package dump

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Loading rows with LOAD DATA LOCAL INFILE.
//
// The server parses an INSERT statement value by value (every literal
// becomes an Item); LOAD DATA reads tab-separated fields straight into the
// row, which on the benchmark's data halved the server's time per byte.
// The dump format stays plain INSERT statements (the stock client loads
// it); the loader converts each INSERT of Dump's own one-line form into
// LOAD DATA's text format on the fly. Anything it does not recognise is
// executed as the INSERT it is, so the conversion can only ever fall back
// to the slower path, never guess.

// infileBatchBytes is about how much converted row data one LOAD DATA
// statement carries (one transaction each).
const infileBatchBytes = 8 << 20

// infileBatch is rows of one table in LOAD DATA's text format: fields
// separated by tabs, rows ended by newlines, \N for NULL, and backslash
// escapes for backslash, tab, newline and NUL.
type infileBatch struct {
	table []byte   // the INSERT's quoted table name
	cols  [][]byte // the INSERT's quoted column names
	intro []bool   // column i carried _utf8mb4'...' values (MySQL JSON)
	rows  int64
	buf   []byte
}

var batchPool = sync.Pool{New: func() any { return &infileBatch{buf: make([]byte, 0, infileBatchBytes+2<<20)} }}

func newBatch(table []byte, cols [][]byte) *infileBatch {
	b := batchPool.Get().(*infileBatch)
	b.table = append(b.table[:0], table...)
	b.cols = b.cols[:0]
	for _, c := range cols {
		b.cols = append(b.cols, bytes.Clone(c))
	}
	b.intro = append(b.intro[:0], make([]bool, len(cols))...)
	b.rows = 0
	b.buf = b.buf[:0]
	return b
}

func (b *infileBatch) release() {
	if cap(b.buf) <= 4*infileBatchBytes {
		batchPool.Put(b)
	}
}

// same reports whether an INSERT into table (cols) can join the batch.
func (b *infileBatch) same(table []byte, cols [][]byte) bool {
	if !bytes.Equal(b.table, table) || len(b.cols) != len(cols) {
		return false
	}
	for i := range cols {
		if !bytes.Equal(b.cols[i], cols[i]) {
			return false
		}
	}
	return true
}

// statement is the LOAD DATA statement for the batch. Field and line
// formats are spelled out rather than left to the defaults; CHARACTER
// SET binary stores every byte as it is (as SET NAMES binary does for the
// INSERTs). Columns that carried _utf8mb4 literals (MySQL's JSON, which
// refuses binary strings) go through a variable and CONVERT.
func (b *infileBatch) statement() string {
	var s bytes.Buffer
	s.WriteString("LOAD DATA LOCAL INFILE 'runner' INTO TABLE ")
	s.Write(b.table)
	s.WriteString(" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' (")
	var set []string
	for i, c := range b.cols {
		if i > 0 {
			s.WriteByte(',')
		}
		if b.intro[i] {
			v := fmt.Sprintf("@runner_v%d", i)
			s.WriteString(v)
			set = append(set, string(c)+" = CONVERT("+v+" USING utf8mb4)")
		} else {
			s.Write(c)
		}
	}
	s.WriteByte(')')
	for i, e := range set {
		if i == 0 {
			s.WriteString(" SET ")
		} else {
			s.WriteString(", ")
		}
		s.WriteString(e)
	}
	return s.String()
}

// loadBatch runs the batch's LOAD DATA on s.
func (s *session) loadBatch(b *infileBatch) (*mysql.Result, error) {
	r, err := s.c.ExecQueryRelayLocalInfile(b.statement(), func([]byte) (io.Reader, error) {
		return bytes.NewReader(b.buf), nil
	})
	if err != nil {
		return nil, s.queryError(err)
	}
	return r, nil
}

// parseInsert splits Dump's `INSERT INTO `t` (`a`,`b`) VALUES (...),(...)`
// into the quoted table name, the quoted column names and the values.
func parseInsert(stmt []byte) (table []byte, cols [][]byte, values []byte, ok bool) {
	rest, ok := bytes.CutPrefix(stmt, []byte("INSERT INTO "))
	if !ok {
		return nil, nil, nil, false
	}
	n := quotedIdentLen(rest)
	if n == 0 {
		return nil, nil, nil, false
	}
	table, rest = rest[:n], rest[n:]
	if rest, ok = bytes.CutPrefix(rest, []byte(" (")); !ok {
		return nil, nil, nil, false
	}
	for {
		n := quotedIdentLen(rest)
		if n == 0 {
			return nil, nil, nil, false
		}
		cols, rest = append(cols, rest[:n]), rest[n:]
		if len(rest) == 0 {
			return nil, nil, nil, false
		}
		if rest[0] == ',' {
			rest = rest[1:]
			continue
		}
		if rest, ok = bytes.CutPrefix(rest, []byte(") VALUES ")); !ok {
			return nil, nil, nil, false
		}
		return table, cols, rest, true
	}
}

// quotedIdentLen is the length of the backquoted name at the start of b,
// or 0.
func quotedIdentLen(b []byte) int {
	if len(b) == 0 || b[0] != '`' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		if b[i] == '`' {
			if i+1 < len(b) && b[i+1] == '`' {
				i++
				continue
			}
			return i + 1
		}
	}
	return 0
}

// appendInfileRows converts the VALUES list of one of Dump's INSERT
// statements (ncols values per row) to LOAD DATA rows appended to dst. It
// understands exactly the literals Dump writes: NULL, numbers, '...' with
// the escapes of appendQuoted, _utf8mb4'...', 0x hex and the empty X-literal. On anything
// else it returns ok false (and dst must be cut back by the caller).
func appendInfileRows(dst, v []byte, ncols int, intro []bool) (out []byte, rows int64, ok bool) {
	i := 0
	for {
		if i >= len(v) || v[i] != '(' {
			return dst, rows, false
		}
		i++
		for c := 0; c < ncols; c++ {
			if c > 0 {
				if i >= len(v) || v[i] != ',' {
					return dst, rows, false
				}
				i++
				dst = append(dst, '\t')
			}
			if i >= len(v) {
				return dst, rows, false
			}
			switch ch := v[i]; {
			case ch == '\'':
				dst, i, ok = appendInfileQuoted(dst, v, i)
			case ch == '_':
				if !bytes.HasPrefix(v[i:], []byte("_utf8mb4'")) {
					return dst, rows, false
				}
				intro[c] = true
				dst, i, ok = appendInfileQuoted(dst, v, i+len("_utf8mb4"))
			case ch == 'N':
				ok = bytes.HasPrefix(v[i:], []byte("NULL"))
				dst, i = append(dst, '\\', 'N'), i+4
			case ch == 'X':
				ok = bytes.HasPrefix(v[i:], []byte("X''"))
				i += 3
			case ch == '0' && i+1 < len(v) && v[i+1] == 'x':
				dst, i, ok = appendInfileHex(dst, v, i+2)
			case ch >= '0' && ch <= '9' || ch == '-' || ch == '+' || ch == '.':
				j := i
				for j < len(v) && (v[j] >= '0' && v[j] <= '9' || v[j] == '-' || v[j] == '+' || v[j] == '.' || v[j] == 'e' || v[j] == 'E') {
					j++
				}
				dst, i, ok = append(dst, v[i:j]...), j, true
			default:
				ok = false
			}
			if !ok {
				return dst, rows, false
			}
		}
		if i >= len(v) || v[i] != ')' {
			return dst, rows, false
		}
		i++
		dst = append(dst, '\n')
		rows++
		if i == len(v) {
			return dst, rows, true
		}
		if v[i] != ',' {
			return dst, rows, false
		}
		i++
	}
}

// infileSpecial marks the bytes appendInfileQuoted looks at.
var infileSpecial = func() (t [256]bool) {
	for _, c := range []byte{'\\', '\'', '\t', '\n'} {
		t[c] = true
	}
	return
}()

// appendInfileQuoted converts the quoted literal at v[i] ('...').
// appendQuoted's escapes \0 \n \r \Z \\ mean the same in LOAD DATA and are
// copied; \' and \" become the bare quote; a raw tab or newline is
// escaped.
func appendInfileQuoted(dst, v []byte, i int) ([]byte, int, bool) {
	i++ // the opening quote
	for {
		j := i
		for j < len(v) && !infileSpecial[v[j]] {
			j++
		}
		dst = append(dst, v[i:j]...)
		if j >= len(v) {
			return dst, j, false
		}
		switch v[j] {
		case '\'':
			return dst, j + 1, true
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\\':
			if j+1 >= len(v) {
				return dst, j, false
			}
			switch e := v[j+1]; e {
			case '0', 'n', 'r', 'Z', '\\':
				dst = append(dst, '\\', e)
			case '\'', '"':
				dst = append(dst, e)
			default:
				return dst, j, false
			}
			j++
		}
		i = j + 1
	}
}

// appendInfileHex decodes the hex digits at v[i:] into bytes, escaped for
// LOAD DATA.
func appendInfileHex(dst, v []byte, i int) ([]byte, int, bool) {
	j := i
	for j+1 < len(v) {
		hi, lo := unhex(v[j]), unhex(v[j+1])
		if hi < 0 || lo < 0 {
			break
		}
		switch c := byte(hi<<4 | lo); c {
		case 0:
			dst = append(dst, '\\', '0')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c)
		}
		j += 2
	}
	if j == i || j < len(v) && unhex(v[j]) >= 0 {
		return dst, j, false // no digits, or an odd number of them
	}
	return dst, j, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
