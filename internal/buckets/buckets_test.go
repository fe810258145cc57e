package buckets

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// Every entry lies in its bucket's range, and the ranges cover the list
// in order, with empty buckets anywhere (first, last, in between).
func TestStarts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 1000} {
		nb := 1 << Bits(n, 8)
		keys := make([]int, n)
		for i := range keys {
			keys[i] = rng.IntN(nb)
		}
		slices.Sort(keys)
		starts := Starts(n, nb, func(i int) int { return keys[i] })
		if len(starts) != nb+1 || starts[0] != 0 || starts[nb] != uint32(n) {
			t.Fatalf("n=%d: table of %d, ends %d and %d", n, len(starts), starts[0], starts[nb])
		}
		for b := range nb {
			if starts[b] > starts[b+1] {
				t.Fatalf("n=%d: bucket %d ends before it starts", n, b)
			}
			for i := starts[b]; i < starts[b+1]; i++ {
				if keys[i] != b {
					t.Fatalf("n=%d: entry %d (bucket %d) is in bucket %d's range", n, i, keys[i], b)
				}
			}
		}
	}
}

func TestBits(t *testing.T) {
	for _, c := range []struct{ n, limit, want int }{{0, 16, 1}, {7, 16, 1}, {8, 16, 2}, {1000, 16, 8}, {1 << 30, 16, 16}} {
		if got := Bits(c.n, c.limit); got != uint(c.want) {
			t.Errorf("Bits(%d, %d) = %d, want %d", c.n, c.limit, got, c.want)
		}
	}
}

// Sort gives exactly what a comparison sort gives, whatever the spread of
// the entries over the buckets: uniform, all in one bucket, most buckets
// empty, and with duplicate entries.
func TestSort(t *testing.T) {
	type entry struct{ key, rest uint32 }
	rng := rand.New(rand.NewPCG(3, 4))
	const nb = 64
	order := func(a, b entry) int {
		if a.key != b.key {
			return int(a.key) - int(b.key)
		}
		return int(a.rest) - int(b.rest)
	}
	spreads := map[string]func() uint32{
		"uniform":    func() uint32 { return rng.Uint32() },
		"one bucket": func() uint32 { return 5<<26 | rng.Uint32N(1<<26) },
		"sparse":     func() uint32 { return rng.Uint32N(3) << 30 },
		"duplicates": func() uint32 { return rng.Uint32N(8) << 26 },
	}
	for name, draw := range spreads {
		for _, n := range []int{0, 1, 2, 7, 1000, 5000} {
			s := make([]entry, n)
			for i := range s {
				s[i] = entry{draw(), rng.Uint32N(4)}
			}
			want := slices.Clone(s)
			slices.SortFunc(want, order)
			Sort(s, nb, func(e *entry) int { return int(e.key >> 26) }, order)
			if !slices.Equal(s, want) {
				t.Fatalf("%s, %d entries: not sorted like slices.SortFunc", name, n)
			}
		}
	}
}
