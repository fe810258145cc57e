package pack

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func identity(b []byte) ([]byte, error) { return b, nil }

func buildPack(t testing.TB, blobs ...[]byte) ([]byte, []Entry) {
	t.Helper()
	w, err := NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Remove() }()
	for i, b := range blobs {
		e := Entry{Type: TypeData, RawLength: uint32(len(b))}
		e.ID[0] = byte(i)
		if err := w.Add(e, b); err != nil {
			t.Fatal(err)
		}
	}
	_, size, err := w.Finish(identity)
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Open()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("size %d, read %d", size, len(data))
	}
	return data, w.Entries()
}

func parsePack(data []byte) ([]Entry, error) {
	if len(data) < TrailerSize {
		return nil, ErrFormat
	}
	tr, err := ParseTrailer(data[len(data)-TrailerSize:], int64(len(data)))
	if err != nil {
		return nil, err
	}
	hdrStart := len(data) - TrailerSize - int(tr.HeaderLength)
	return ParseHeader(data[hdrStart:len(data)-TrailerSize], uint64(hdrStart))
}

func TestRoundTrip(t *testing.T) {
	data, want := buildPack(t, []byte("alpha"), []byte(""), bytes.Repeat([]byte("x"), 1000))
	got, err := parsePack(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
		if blob := data[got[i].Offset : got[i].Offset+uint64(got[i].Length)]; int(got[i].RawLength) != len(blob) {
			t.Fatalf("entry %d length mismatch", i)
		}
	}
}

func TestCorruptHeaders(t *testing.T) {
	data, _ := buildPack(t, []byte("alpha"), []byte("beta"))
	n := len(data)
	mut := func(f func(b []byte)) []byte { c := bytes.Clone(data); f(c); return c }
	for name, b := range map[string][]byte{
		"magic":          mut(func(b []byte) { b[n-1] ^= 1 }),
		"version":        mut(func(b []byte) { b[n-12] = 9 }),
		"header too big": mut(func(b []byte) { b[n-14] = 0xff }),
		"type":           mut(func(b []byte) { b[9] = 7 }),
		"reserved":       mut(func(b []byte) { b[9+2] = 1 }),
		"offset gap":     mut(func(b []byte) { b[9+EntrySize+12]++ }),
		"truncated":      data[4:],
	} {
		if _, err := parsePack(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got %v, want ErrFormat", name, err)
		}
	}
}

// FuzzParseHeader feeds arbitrary bytes to the trailer and header parsers:
// they must return an error or a consistent result, never panic.
func FuzzParseHeader(f *testing.F) {
	data, _ := buildPack(f, []byte("alpha"), []byte("beta"))
	f.Add(data)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parsePack(b)
		if err != nil {
			return
		}
		var end uint64
		for _, e := range entries {
			end = e.Offset + uint64(e.Length)
		}
		if end > uint64(len(b)) {
			t.Fatalf("entries reach %d beyond pack of %d", end, len(b))
		}
		if !bytes.Equal(EncodeHeader(entries), b[end:len(b)-TrailerSize]) {
			t.Fatal("header does not re-encode to the same bytes")
		}
	})
}
