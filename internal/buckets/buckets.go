// Package buckets speeds up lookups in a sorted list of uniformly random
// keys (hashes, ids): a table of where each bucket of leading key bits
// starts narrows a binary search over the whole list, mostly cache
// misses, to the few entries of one bucket; and sorting by bucket first
// makes sorting such a list linear.
package buckets

import (
	"math/bits"
	"slices"
)

// Bits returns the number of leading key bits that gives about four
// entries per bucket for n entries, between 1 and limit.
func Bits(n int, limit int) uint {
	return uint(min(max(bits.Len(uint(n/4)), 1), limit))
}

// Starts returns the bucket table of a list of n entries whose bucket
// numbers key(i) do not decrease and are below nb: starts[k] is the first
// entry in bucket k or a later one, and starts[nb] is n, so bucket k is
// entries starts[k] to starts[k+1].
func Starts(n, nb int, key func(i int) int) []uint32 {
	starts := make([]uint32, nb+1)
	k := 0
	for i := range n {
		for b := key(i); k <= b; k++ {
			starts[k] = uint32(i)
		}
	}
	for ; k <= nb; k++ {
		starts[k] = uint32(n)
	}
	return starts
}

// Sort sorts s by bucket, then by cmp within each bucket, where key(&s[i])
// is the bucket of s[i], below nb, and cmp orders the entries of a bucket
// consistently with the buckets (entries of a lower bucket come first).
//
// With uniformly random keys and a few entries per bucket this is linear:
// one pass counts the buckets, a second moves every entry straight into
// its bucket's range in place (an American flag sort), and what is left
// is sorting a few entries per bucket. A comparison sort of 250,000 index
// entries makes about 18 comparisons of 32-byte ids per entry and moves
// each entry as many times; this makes one key computation and one move.
func Sort[T any](s []T, nb int, key func(*T) int, cmp func(a, b T) int) {
	if len(s) < 2 {
		return
	}
	// next[b] is where the next entry of bucket b goes; end[b] where the
	// bucket ends.
	next := make([]uint32, nb)
	for i := range s {
		next[key(&s[i])]++
	}
	end := make([]uint32, nb)
	var at uint32
	for b, c := range next {
		next[b] = at
		at += c
		end[b] = at
	}
	start := 0
	for b := range nb {
		// Every entry before next[b] is in place; the one at next[b]
		// either belongs here or is swapped into its own bucket, which
		// places it for good, so each entry moves at most once.
		for next[b] < end[b] {
			i := next[b]
			k := key(&s[i])
			if k == b {
				next[b]++
				continue
			}
			s[i], s[next[k]] = s[next[k]], s[i]
			next[k]++
		}
		slices.SortFunc(s[start:end[b]], cmp)
		start = int(end[b])
	}
}
