// Package buckets speeds up lookups in a sorted list of uniformly random
// keys (hashes, ids): a table of where each bucket of leading key bits
// starts narrows a binary search over the whole list, mostly cache
// misses, to the few entries of one bucket.
package buckets

import "math/bits"

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
