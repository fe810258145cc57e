package repo

import (
	"math/rand/v2"
	"testing"

	"github.com/backup-runner/runner/internal/repo/pack"
)

func packEntry(id ID, off uint64) pack.Entry {
	return pack.Entry{Type: uint8(DataBlob), Length: 10, RawLength: 10, Offset: off, ID: id}
}

// The in-memory index keeps the first location seen for a blob, whether
// the duplicates come from index objects (loaded in bulk) or from packs
// added later, and finds blobs in both parts.
func TestMemIndexFirstSeenWins(t *testing.T) {
	id := func(b byte) ID { var i ID; i[0] = b; return i }
	pk := func(p byte, blobs ...byte) indexPack {
		ip := indexPack{ID: id(100 + p)}
		for i, b := range blobs {
			ip.Entries = append(ip.Entries, packEntry(id(b), uint64(i*10)))
		}
		return ip
	}
	m := newMemIndex()
	m.beginLoad()
	for _, p := range []indexPack{pk(1, 5, 3, 9), pk(2, 3, 7), pk(3, 9)} {
		if err := m.addPack(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok := m.lookup(BlobHandle{DataBlob, id(5)}); ok {
		t.Fatal("a blob is visible before the load ends")
	}
	m.endLoad()
	if err := m.addPack(pk(4, 7, 11)); err != nil {
		t.Fatal(err)
	}
	for b, wantPack := range map[byte]byte{5: 1, 3: 1, 9: 1, 7: 2, 11: 4} {
		p, _, ok := m.lookup(BlobHandle{DataBlob, id(b)})
		if !ok || p != id(100+wantPack) {
			t.Errorf("blob %d: pack %v %v, want pack %d", b, p[0], ok, 100+wantPack)
		}
	}
	if _, _, ok := m.lookup(BlobHandle{TreeBlob, id(5)}); ok {
		t.Error("a data blob was found as a tree blob")
	}
	if len(m.sorted) != 4 || len(m.recent) != 1 {
		t.Errorf("sorted %d, recent %d; want 4 and 1", len(m.sorted), len(m.recent))
	}

	// A second bulk load (a recovery) merges into the sorted part: what
	// was sorted keeps its location, new blobs are found, and a recent
	// blob loaded again is kept once, in the sorted part.
	m.beginLoad()
	for _, p := range []indexPack{pk(5, 12, 5, 2), pk(6, 11, 12, 1)} {
		if err := m.addPack(p); err != nil {
			t.Fatal(err)
		}
	}
	m.endLoad()
	for b, wantPack := range map[byte]byte{1: 6, 2: 5, 3: 1, 5: 1, 7: 2, 9: 1, 11: 6, 12: 5} {
		p, _, ok := m.lookup(BlobHandle{DataBlob, id(b)})
		if !ok || p != id(100+wantPack) {
			t.Errorf("after the second load, blob %d: pack %v %v, want pack %d", b, p[0], ok, 100+wantPack)
		}
	}
	if len(m.sorted) != 8 || len(m.recent) != 0 {
		t.Errorf("after the second load: sorted %d, recent %d; want 8 and 0", len(m.sorted), len(m.recent))
	}
}

// The bucket table finds every loaded blob of either type, and nothing
// else, at every index size (from empty buckets to full ones).
func TestMemIndexBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	randID := func() ID {
		var id ID
		for i := range id {
			id[i] = byte(rng.IntN(256))
		}
		return id
	}
	for _, n := range []int{1, 3, 100, 5000} {
		m := newMemIndex()
		m.beginLoad()
		want := map[BlobHandle]uint32{}
		for p := range n/50 + 1 {
			ip := indexPack{ID: randID()}
			for i := range min(50, n-p*50) {
				e := packEntry(randID(), uint64(i*10))
				if i%3 == 0 {
					e.Type = uint8(TreeBlob)
				}
				ip.Entries = append(ip.Entries, e)
				want[BlobHandle{BlobType(e.Type), ID(e.ID)}] = uint32(i * 10)
			}
			if err := m.addPack(ip); err != nil {
				t.Fatal(err)
			}
		}
		m.endLoad()
		for h, off := range want {
			loc, ok := m.find(h)
			if !ok || loc.offset != off {
				t.Fatalf("n=%d: %v: found %v at %d, want %d", n, h, ok, loc.offset, off)
			}
			other := BlobHandle{DataBlob + TreeBlob - h.Type, h.ID}
			if _, ok := m.find(other); ok {
				t.Fatalf("n=%d: %v found as the other type", n, h)
			}
		}
		for range 1000 {
			h := BlobHandle{DataBlob, randID()}
			if _, added := want[h]; !added {
				if _, ok := m.find(h); ok {
					t.Fatalf("n=%d: a blob never added was found", n)
				}
			}
		}
	}
}
