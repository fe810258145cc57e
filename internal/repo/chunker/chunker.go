// Package chunker cuts byte streams into content-defined chunks with a
// FastCDC-style gear hash and normalized chunking.
//
// Boundaries depend only on the bytes near them, so an insertion or deletion
// in a file moves the boundaries of the chunks around the edit and leaves the
// others (and therefore their ids) unchanged: that is what makes deduplication
// across snapshots work for files that change in place.
//
// The gear table is derived from a 32-byte seed. Unencrypted repositories use
// the all-zero seed (DefaultSeed), so two unencrypted repositories chunk the
// same data the same way. Encrypted repositories use a random secret seed
// kept inside the encrypted config: with a public table an observer who can
// see chunk (blob) sizes could test whether a repository holds a known file
// by comparing the size sequence; a secret table makes the boundaries, and so
// the sizes, unpredictable without the key.
package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/zeebo/blake3"
)

// Limits on configurable sizes. MinLimit keeps the per-chunk overhead (index
// entry, pack header entry, AEAD tag) small relative to the data; MaxLimit
// bounds the memory a chunker and a blob decoder may need.
const (
	MinLimit = 64
	MaxLimit = 64 << 20
)

// Default sizes: see docs/REPOSITORY.md for the reasoning.
const (
	DefaultMin = 256 << 10
	DefaultAvg = 1 << 20
	DefaultMax = 4 << 20
)

// gearContext is the input hashed (keyed by the seed) to derive the table.
// Changing it changes every boundary in every repository: it is part of the
// on-disk format.
const gearContext = "runner chunker gear table v1"

// normalization is FastCDC's "NC level": the mask before the normal size has
// this many more bits than log2(avg), the mask after it this many fewer,
// which narrows the chunk size distribution around avg.
const normalization = 2

// DefaultSeed is the gear seed of unencrypted repositories (all zero).
var DefaultSeed [32]byte

// Params configure a chunker. They are recorded in the repository config;
// changing them for an existing repository would stop deduplication against
// everything already stored.
type Params struct {
	Min, Avg, Max int
	Seed          [32]byte
}

// DefaultParams returns the default sizes with the given seed.
func DefaultParams(seed [32]byte) Params {
	return Params{Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax, Seed: seed}
}

// Validate reports whether the sizes are usable: MinLimit <= Min < Avg < Max
// <= MaxLimit and Avg a power of two (the masks are built from log2(Avg)).
func (p Params) Validate() error {
	switch {
	case p.Min < MinLimit:
		return fmt.Errorf("chunker: min %d below %d", p.Min, MinLimit)
	case p.Max > MaxLimit:
		return fmt.Errorf("chunker: max %d above %d", p.Max, MaxLimit)
	case !(p.Min < p.Avg && p.Avg < p.Max):
		return fmt.Errorf("chunker: need min < avg < max, have %d, %d, %d", p.Min, p.Avg, p.Max)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: avg %d is not a power of two", p.Avg)
	case bits.TrailingZeros(uint(p.Avg)) <= normalization:
		return fmt.Errorf("chunker: avg %d too small", p.Avg)
	}
	return nil
}

// Table is a prepared gear table plus masks; it is immutable and safe to
// share between goroutines.
type Table struct {
	p            Params
	gear         [256]uint64
	maskS, maskL uint64
}

// NewTable validates p and derives its gear table.
func NewTable(p Params) (*Table, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h, err := blake3.NewKeyed(p.Seed[:])
	if err != nil {
		return nil, fmt.Errorf("chunker: %w", err)
	}
	_, _ = h.WriteString(gearContext)
	var raw [256 * 8]byte
	if _, err := io.ReadFull(h.Digest(), raw[:]); err != nil {
		return nil, fmt.Errorf("chunker: derive gear table: %w", err)
	}
	t := &Table{p: p}
	for i := range t.gear {
		t.gear[i] = binary.LittleEndian.Uint64(raw[i*8:])
	}
	// The gear hash shifts left one bit per byte, so bit k of the hash depends
	// on the last k+1 bytes only. Masks over the top bits therefore look at a
	// 64-byte window; masks over the low bits would look at only ~20 bytes.
	b := bits.TrailingZeros(uint(p.Avg))
	t.maskS = topBits(b + normalization)
	t.maskL = topBits(b - normalization)
	return t, nil
}

func topBits(n int) uint64 { return ^uint64(0) << (64 - n) }

// Params returns the parameters the table was built from.
func (t *Table) Params() Params { return t.p }

// Cut returns the length of the first chunk of data. If data holds fewer
// than Max bytes and no boundary is found, Cut returns len(data): the caller
// decides whether that is the end of the stream (a final short chunk) or
// whether more input is needed.
func (t *Table) Cut(data []byte) int {
	n := len(data)
	if n <= t.p.Min {
		return n
	}
	n = min(n, t.p.Max)
	if cut, _ := t.find(data[:n], t.p.Min, 0); cut > 0 {
		return cut
	}
	return n
}

// find looks for the first boundary in data, resuming at i with the gear
// hash fp of the bytes before it. FastCDC skips the first Min bytes
// entirely (boundaries there are not allowed anyway, and the 64-byte
// window is refilled long before Avg), then uses the strict mask up to
// Avg and the loose one after. It returns the chunk's length, or 0 and
// the hash after all of data when there is no boundary in it.
func (t *Table) find(data []byte, i int, fp uint64) (int, uint64) {
	normal := min(t.p.Avg, len(data))
	cut, fp, i := scan(&t.gear, data[:normal], i, fp, t.maskS)
	if cut > 0 {
		return cut, fp
	}
	cut, fp, _ = scan(&t.gear, data, i, fp, t.maskL)
	return cut, fp
}

// scan rolls the gear hash fp over data from i on and returns the length
// up to the first byte after which fp&mask is 0 with the hash there, or 0,
// the hash after all of data and len(data).
//
// It takes two bytes a step. One byte at a time, every byte waits for the
// previous one's shift and add; but two steps of fp<<1 + g fold into
// fp<<2 + (g0<<1 + g1), whose inner sum does not depend on fp, so the
// hash after the second byte is ready as soon as the first one's, and the
// first one's is computed beside it. The arithmetic is the same modulo
// 2^64, so the boundaries are exactly those of the byte-wise loop (which
// TestScanMatchesBytewise checks); on the benchmark machine this runs at
// 2.4 GB/s instead of 1.9.
func scan(gear *[256]uint64, data []byte, i int, fp, mask uint64) (int, uint64, int) {
	for ; i+1 < len(data); i += 2 {
		b := data[i : i+2 : i+2] // one bounds check for both bytes
		g0, g1 := gear[b[0]], gear[b[1]]
		first := fp<<1 + g0
		fp = fp<<2 + (g0<<1 + g1)
		if first&mask == 0 {
			return i + 1, first, i + 1
		}
		if fp&mask == 0 {
			return i + 2, fp, i + 2
		}
	}
	for ; i < len(data); i++ {
		fp = fp<<1 + gear[data[i]]
		if fp&mask == 0 {
			return i + 1, fp, i + 1
		}
	}
	return 0, fp, i
}

// Chunker reads a stream and returns its chunks one by one. It scans for
// a boundary as the data arrives (scan), so it only ever needs the chunk
// being cut in memory, not a whole Max-sized window ahead of it: memory
// use is bounded by Max plus one read (readRoom) regardless of the
// stream's length, and stays far below it for small streams.
type Chunker struct {
	t     *Table
	r     io.Reader
	buf   []byte
	start int // first unconsumed byte in buf: the start of the next chunk
	end   int // end of valid data in buf
	eof   bool
	err   error
	// The scan of the chunk starting at start: bytes [start, start+scanned)
	// are scanned without a boundary, and fp is the gear hash after them.
	scanned int
	fp      uint64
}

// initialBuf is a new chunker's buffer size. The buffer grows (to
// Max+readRoom) only when a stream needs it: a backup of many small files,
// one chunker per worker, then holds kilobytes instead of megabytes.
const initialBuf = 256 << 10

// readRoom is the least room a full-size buffer has for a read after the
// chunk being cut (which is shorter than Max).
const readRoom = 512 << 10

// New returns a chunker reading from r.
func New(t *Table, r io.Reader) *Chunker {
	return &Chunker{t: t, r: r, buf: make([]byte, min(initialBuf, t.p.Max+readRoom))}
}

// Reset reuses the chunker (and its buffer) for a new stream.
func (c *Chunker) Reset(r io.Reader) {
	c.r, c.start, c.end, c.eof, c.err = r, 0, 0, false, nil
	c.scanned, c.fp = 0, 0
}

// Next returns the next chunk. The slice is only valid until the next call
// to Next or Reset; callers that keep it must copy it. At the end of the
// stream Next returns io.EOF; read errors are returned as they are.
func (c *Chunker) Next() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	for empty := 0; ; {
		if n, ok := c.scan(); ok {
			chunk := c.buf[c.start : c.start+n]
			c.start += n
			c.scanned, c.fp = 0, 0
			return chunk, nil
		}
		if c.eof {
			c.err = io.EOF
			return nil, io.EOF
		}
		if c.end == len(c.buf) {
			if c.start > 0 {
				// Move the chunk being cut (shorter than Max) to the
				// front: each byte is moved at most once.
				c.end = copy(c.buf, c.buf[c.start:c.end])
				c.start = 0
			}
			if c.end == len(c.buf) {
				// Full with one chunk still shorter than Max: grow, by
				// four at a time so that few smaller buffers are left
				// behind as garbage.
				nb := make([]byte, min(4*len(c.buf), c.t.p.Max+readRoom))
				c.end = copy(nb, c.buf[:c.end])
				c.buf = nb
			}
		}
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if errors.Is(err, io.EOF) {
			c.eof = true
		} else if err != nil {
			c.err = err
			return nil, err
		} else if n == 0 {
			// A reader that keeps returning nothing would spin forever.
			if empty++; empty > 100 {
				c.err = io.ErrNoProgress
				return nil, c.err
			}
		}
	}
}

// scan continues looking for the boundary of the chunk at start in the
// data read so far. It cuts exactly where Table.Cut would on the whole
// stream: at the first boundary, at Max, or at the end of the stream.
// Without a cut it remembers how far it got and reports false.
func (c *Chunker) scan() (int, bool) {
	p := &c.t.p
	data := c.buf[c.start:c.end]
	n := len(data)
	if n <= p.Min {
		return n, c.eof && n > 0
	}
	lim := min(n, p.Max)
	cut, fp := c.t.find(data[:lim], max(c.scanned, p.Min), c.fp)
	if cut > 0 {
		return cut, true
	}
	c.scanned, c.fp = lim, fp
	if lim == p.Max || c.eof {
		return lim, true
	}
	return 0, false
}
