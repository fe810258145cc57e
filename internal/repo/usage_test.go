package repo

import (
	"context"
	"testing"
)

// bruteUsage is the stored size of every blob reachable from the given
// snapshots, found by walking each of them separately.
func bruteUsage(t *testing.T, ctx context.Context, r *Repository, sns []*Snapshot) int64 {
	t.Helper()
	seen := map[BlobHandle]bool{}
	var walk func(id ID)
	walk = func(id ID) {
		seen[BlobHandle{TreeBlob, id}] = true
		nodes, err := r.LoadTree(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			for _, c := range n.Content {
				seen[BlobHandle{DataBlob, c}] = true
			}
			if n.Type == NodeDir {
				walk(n.Subtree)
			}
		}
	}
	for _, sn := range sns {
		for _, it := range sn.Items {
			for _, c := range it.Content {
				seen[BlobHandle{DataBlob, c}] = true
			}
			if it.Kind == ItemTree {
				walk(it.Tree)
			}
		}
	}
	var total int64
	for h := range seen {
		total += r.storedSize(h)
	}
	return total
}

func TestSnapshotUsageMatchesAWalkOfEverySubset(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, false)
	r := openRepo(t, st, false, LockShared)
	// Five snapshots that share some files (the fixtures overlap by seed)
	// and subtrees (snapshot 2 and 3 are the same tree).
	fxs := []fixture{makeFixture(1, 6), makeFixture(2, 6), makeFixture(3, 4), makeFixture(3, 4), makeFixture(1, 8)}
	fxs[4]["extra"] = randBytes(99, 50000)
	for i, fx := range fxs {
		if _, err := saveSnapshot(ctx, r, "job", fx); err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
	}
	sns, err := r.ListSnapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := r.SnapshotUsage(ctx, sns)
	if err != nil {
		t.Fatal(err)
	}
	for mask := 0; mask < 1<<len(sns); mask++ {
		var pos []int
		var subset []*Snapshot
		for i := range sns {
			if mask&(1<<i) != 0 {
				pos = append(pos, i)
				subset = append(subset, sns[i])
			}
		}
		if got, want := u.Size(pos), bruteUsage(t, ctx, r, subset); got != want {
			t.Errorf("subset %v: Size = %d, walk says %d", pos, got, want)
		}
	}
	all := []int{0, 1, 2, 3, 4}
	for p := range sns {
		others := []int{}
		for _, o := range all {
			if o != p {
				others = append(others, o)
			}
		}
		if got, want := u.Exclusive(p, others), u.Size(all)-u.Size(others); got != want {
			t.Errorf("Exclusive(%d) = %d, want Size(all)-Size(others) = %d", p, got, want)
		}
	}
	if u.Size(all) == 0 || u.Size([]int{0}) >= u.Size(all) {
		t.Errorf("sizes make no sense: all %d, first %d", u.Size(all), u.Size([]int{0}))
	}
}
