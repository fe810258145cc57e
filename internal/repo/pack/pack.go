// Package pack reads and writes pack files: a sequence of stored blobs
// followed by a header that lists them and a fixed 16-byte trailer.
//
// Layout (docs/REPOSITORY.md has the full description):
//
//	blob 0 | blob 1 | ... | blob n-1 | header | trailer
//	trailer = header length (uint32 LE) | version (uint32 LE) | "RUNRPACK"
//
// The header is n entries of EntrySize bytes, sealed as a whole in an
// encrypted repository. Putting the header at the end lets a writer stream
// blobs out without knowing in advance how many there will be.
package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/blake3"
)

// Format constants.
const (
	Version     = 1
	Magic       = "RUNRPACK"
	TrailerSize = 16
	EntrySize   = 52
	// MaxHeaderSize bounds what a reader allocates for a header: about
	// 320,000 entries, more than a writer ever puts in one pack (MaxEntries).
	MaxHeaderSize = 16 << 20
	// MaxEntries is where a writer closes a pack regardless of its size, so
	// that packs of tiny blobs keep headers far below MaxHeaderSize.
	MaxEntries = 100_000
	// MaxBlobSize bounds the raw (and stored) length of one blob, so that a
	// reader never allocates more than this for a blob however the header
	// or index was damaged. Data chunks are at most 64 MiB; the rest of the
	// room is for trees of very large directories.
	MaxBlobSize = 256 << 20
)

// Blob types.
const (
	TypeData uint8 = 1
	TypeTree uint8 = 2
)

// Compression kinds.
const (
	CompressionNone uint8 = 0
	CompressionZstd uint8 = 1
)

// ErrFormat marks a structurally invalid pack, header or index.
var ErrFormat = errors.New("invalid format")

// Entry describes one blob in a pack.
type Entry struct {
	Type        uint8
	Compression uint8
	Length      uint32 // stored length (after compression and sealing)
	RawLength   uint32 // plaintext length
	Offset      uint64 // from the start of the pack
	ID          [32]byte
}

// Validate checks the fields an entry can be judged on alone.
func (e Entry) Validate() error {
	switch {
	case e.Type != TypeData && e.Type != TypeTree:
		return fmt.Errorf("blob type %d: %w", e.Type, ErrFormat)
	case e.Compression != CompressionNone && e.Compression != CompressionZstd:
		return fmt.Errorf("compression %d: %w", e.Compression, ErrFormat)
	case e.Length > MaxBlobSize || e.RawLength > MaxBlobSize:
		return fmt.Errorf("blob length %d/%d above %d: %w", e.Length, e.RawLength, MaxBlobSize, ErrFormat)
	case e.Offset > 1<<62:
		return fmt.Errorf("blob offset %d: %w", e.Offset, ErrFormat)
	}
	return nil
}

// AppendEntry appends the EntrySize-byte encoding of e to b.
func AppendEntry(b []byte, e Entry) []byte {
	b = append(b, e.Type, e.Compression, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, e.Length)
	b = binary.LittleEndian.AppendUint32(b, e.RawLength)
	b = binary.LittleEndian.AppendUint64(b, e.Offset)
	return append(b, e.ID[:]...)
}

// DecodeEntry decodes and validates one entry from the first EntrySize
// bytes of b.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) < EntrySize {
		return Entry{}, fmt.Errorf("entry of %d bytes: %w", len(b), ErrFormat)
	}
	if b[2] != 0 || b[3] != 0 {
		return Entry{}, fmt.Errorf("reserved bytes set: %w", ErrFormat)
	}
	e := Entry{
		Type:        b[0],
		Compression: b[1],
		Length:      binary.LittleEndian.Uint32(b[4:]),
		RawLength:   binary.LittleEndian.Uint32(b[8:]),
		Offset:      binary.LittleEndian.Uint64(b[12:]),
	}
	copy(e.ID[:], b[20:52])
	return e, e.Validate()
}

// EncodeHeader returns the plaintext header for entries.
func EncodeHeader(entries []Entry) []byte {
	b := make([]byte, 0, len(entries)*EntrySize)
	for _, e := range entries {
		b = AppendEntry(b, e)
	}
	return b
}

// ParseHeader decodes a plaintext header of a pack whose blob region is
// dataLen bytes long. Blobs must be contiguous from offset 0 and fill the
// region exactly: anything else means the header does not describe the pack.
func ParseHeader(b []byte, dataLen uint64) ([]Entry, error) {
	if len(b) == 0 || len(b)%EntrySize != 0 {
		return nil, fmt.Errorf("header of %d bytes is not a positive multiple of %d: %w", len(b), EntrySize, ErrFormat)
	}
	entries := make([]Entry, 0, len(b)/EntrySize)
	var off uint64
	for i := 0; i < len(b); i += EntrySize {
		e, err := DecodeEntry(b[i:])
		if err != nil {
			return nil, fmt.Errorf("header entry %d: %w", i/EntrySize, err)
		}
		if e.Offset != off {
			return nil, fmt.Errorf("header entry %d at offset %d, want %d: %w", i/EntrySize, e.Offset, off, ErrFormat)
		}
		off += uint64(e.Length)
		entries = append(entries, e)
	}
	if off != dataLen {
		return nil, fmt.Errorf("header describes %d bytes of blobs, pack has %d: %w", off, dataLen, ErrFormat)
	}
	return entries, nil
}

// Trailer is the decoded final TrailerSize bytes of a pack.
type Trailer struct {
	HeaderLength uint32
	Version      uint32
}

// AppendTrailer appends the trailer for a header of the given stored length.
func AppendTrailer(b []byte, headerLen uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, headerLen)
	b = binary.LittleEndian.AppendUint32(b, Version)
	return append(b, Magic...)
}

// ParseTrailer decodes the last TrailerSize bytes of a pack of packSize
// bytes and checks that the header it announces fits.
func ParseTrailer(b []byte, packSize int64) (Trailer, error) {
	if len(b) != TrailerSize {
		return Trailer{}, fmt.Errorf("trailer of %d bytes: %w", len(b), ErrFormat)
	}
	if !bytes.Equal(b[8:], []byte(Magic)) {
		return Trailer{}, fmt.Errorf("bad pack magic %q: %w", b[8:], ErrFormat)
	}
	t := Trailer{HeaderLength: binary.LittleEndian.Uint32(b), Version: binary.LittleEndian.Uint32(b[4:])}
	if t.Version != Version {
		return Trailer{}, fmt.Errorf("unsupported pack version %d: %w", t.Version, ErrFormat)
	}
	if t.HeaderLength == 0 || t.HeaderLength > MaxHeaderSize || int64(t.HeaderLength)+TrailerSize > packSize {
		return Trailer{}, fmt.Errorf("header length %d in a pack of %d bytes: %w", t.HeaderLength, packSize, ErrFormat)
	}
	return t, nil
}

// Writer streams a pack to a temporary file, so that memory use does not
// depend on the pack size. It is not safe for concurrent use.
type Writer struct {
	f       *os.File
	h       *blake3.Hasher
	entries []Entry
	off     uint64
	size    int64
	done    bool
}

// NewWriter creates a pack writer with its temporary file in dir ("" means
// the system default).
func NewWriter(dir string) (*Writer, error) {
	f, err := os.CreateTemp(dir, "runner-pack-")
	if err != nil {
		return nil, fmt.Errorf("pack temp file: %w", err)
	}
	return &Writer{f: f, h: blake3.New()}, nil
}

// NewWriterFile creates a pack writer on an empty temporary file the
// caller created (e.g. on the repository's own file system).
func NewWriterFile(f *os.File) *Writer {
	return &Writer{f: f, h: blake3.New()}
}

// File returns the temporary file, for a store that moves it into place
// after Finish. The writer keeps no claim on it but for Remove.
func (w *Writer) File() *os.File { return w.f }

func (w *Writer) write(b []byte) error {
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("write pack temp file: %w", err)
	}
	_, _ = w.h.Write(b)
	w.size += int64(len(b))
	return nil
}

// Add appends one stored blob. e.Offset and e.Length are filled in.
func (w *Writer) Add(e Entry, stored []byte) error {
	if w.done {
		return errors.New("pack writer already finished")
	}
	e.Offset, e.Length = w.off, uint32(len(stored))
	if len(stored) > MaxBlobSize {
		return fmt.Errorf("stored blob of %d bytes above %d", len(stored), MaxBlobSize)
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if err := w.write(stored); err != nil {
		return err
	}
	w.off += uint64(len(stored))
	w.entries = append(w.entries, e)
	return nil
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Count is the number of blobs added.
func (w *Writer) Count() int { return len(w.entries) }

// Entries returns the blobs added so far.
func (w *Writer) Entries() []Entry { return w.entries }

// Finish writes the header (passed through seal, which encrypts it in an
// encrypted repository) and trailer, and returns the pack's id (BLAKE3 of
// all its bytes) and size. Afterwards Open reads the finished pack.
func (w *Writer) Finish(seal func(plain []byte) ([]byte, error)) (id [32]byte, size int64, err error) {
	if w.done {
		return id, 0, errors.New("pack writer already finished")
	}
	if len(w.entries) == 0 {
		return id, 0, errors.New("empty pack")
	}
	hdr, err := seal(EncodeHeader(w.entries))
	if err != nil {
		return id, 0, fmt.Errorf("seal pack header: %w", err)
	}
	if len(hdr) > MaxHeaderSize {
		return id, 0, fmt.Errorf("pack header of %d bytes above %d", len(hdr), MaxHeaderSize)
	}
	if err := w.write(AppendTrailer(hdr, uint32(len(hdr)))); err != nil {
		return id, 0, err
	}
	w.done = true
	copy(id[:], w.h.Sum(nil))
	return id, w.size, nil
}

// Open returns a reader over the finished pack, from its first byte.
func (w *Writer) Open() (io.Reader, error) {
	if !w.done {
		return nil, errors.New("pack writer not finished")
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind pack temp file: %w", err)
	}
	return w.f, nil
}

// Remove closes and deletes the temporary file. It is safe to call more
// than once.
func (w *Writer) Remove() error {
	if w.f == nil {
		return nil
	}
	name := w.f.Name()
	_ = w.f.Close()
	w.f = nil
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pack temp file: %w", err)
	}
	return nil
}
