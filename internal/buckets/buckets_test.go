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
