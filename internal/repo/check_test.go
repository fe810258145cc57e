package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func packFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(filepath.Join(root, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x40
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFindsFlippedByte(t *testing.T) {
	forBoth(t, func(t *testing.T, enc bool) {
		ctx := context.Background()
		st := newStore(t)
		initRepo(t, st, enc)
		r := openRepo(t, st, enc, LockShared)
		fx := makeFixture(1, 6)
		snap, err := saveSnapshot(ctx, r, "job", fx)
		if err != nil {
			t.Fatal(err)
		}
		rep := mustCheck(t, ctx, r, true)
		if rep.Snapshots != 1 || rep.Trees != 2 || rep.DataBlobs == 0 || rep.PacksRead != rep.Packs {
			t.Fatalf("report: %+v", rep)
		}

		// Flip a byte inside the first blob of the pack that holds file
		// dir/f0's first chunk.
		sn, _ := r.LoadSnapshot(ctx, snap)
		rootNodes, _ := r.LoadTree(ctx, sn.Items[0].Tree)
		var sub ID
		for _, n := range rootNodes {
			if n.Name == "dir" {
				sub = n.Subtree
			}
		}
		subNodes, _ := r.LoadTree(ctx, sub)
		victim := subNodes[0].Content[0] // dir/f0
		packID, loc, ok := r.idx.lookup(BlobHandle{DataBlob, victim})
		if !ok {
			t.Fatal("victim not indexed")
		}
		flipByte(t, filepath.Join(st.Root(), filepath.FromSlash(packName(packID))), int64(loc.offset)+int64(loc.length)/2)

		r2 := openRepo(t, st, enc, LockShared)
		// Structure alone does not read data blobs.
		if rep := mustCheck(t, ctx, r2, false); rep.PacksRead != 0 {
			t.Fatal("structure check read packs")
		}
		rep, err = r2.Check(ctx, CheckOptions{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		var blobProblem *Problem
		for i, p := range rep.Problems {
			switch p.Kind {
			case ProblemBlob:
				blobProblem = &rep.Problems[i]
			case ProblemPackHash:
			default:
				t.Errorf("unexpected problem %s", p)
			}
		}
		if blobProblem == nil {
			t.Fatalf("flipped byte not found: %+v", rep.Problems)
		}
		msg := blobProblem.String()
		for _, want := range []string{packID.String(), victim.String(), snap.Short(), "files/dir/" + subNodes[0].Name} {
			if !strings.Contains(msg, want) {
				t.Errorf("problem %q does not mention %q", msg, want)
			}
		}
		// Loading the blob fails loudly, naming pack and blob.
		_, err = r2.LoadBlob(ctx, DataBlob, victim, nil)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), packID.String()) || !strings.Contains(err.Error(), victim.String()) {
			t.Fatalf("LoadBlob of a damaged blob: %v", err)
		}
	})
}

func TestCheckFindsDamagedHeaderAndMissingPack(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, true)
	r := openRepo(t, st, true, LockShared)
	snap, err := saveSnapshot(ctx, r, "job", makeFixture(2, 30))
	if err != nil {
		t.Fatal(err)
	}
	files := packFiles(t, st.Root())
	if len(files) < 3 {
		t.Fatalf("want several packs, have %d", len(files))
	}
	// Damage the header of one pack (the byte before the trailer), delete another.
	flipByte(t, files[0], -17)
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	r2 := openRepo(t, st, true, LockShared)
	rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
	}
	if kinds[ProblemPackHeader] == 0 || kinds[ProblemMissingPack] == 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	affects := false
	for _, p := range rep.Problems {
		if p.Kind == ProblemMissingPack && len(p.Snapshots) == 1 && p.Snapshots[0] == snap {
			affects = true
		}
	}
	if !affects {
		t.Fatalf("missing pack not attributed to the snapshot: %v", rep.Problems)
	}
}

func TestCheckSubset(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, false)
	r := openRepo(t, st, false, LockShared)
	if _, err := saveSnapshot(ctx, r, "job", makeFixture(3, 10)); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Check(ctx, CheckOptions{ReadData: true, ReadDataSubset: 0.3})
	if err != nil || !rep.OK() {
		t.Fatalf("%v %v", err, rep)
	}
	if rep.PacksRead == 0 || rep.PacksRead >= rep.Packs {
		t.Fatalf("subset read %d of %d packs", rep.PacksRead, rep.Packs)
	}
}

func TestRebuildIndex(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	initRepo(t, st, true)
	r := openRepo(t, st, true, LockShared)
	fx := makeFixture(4, 20)
	snap, err := saveSnapshot(ctx, r, "job", fx)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close(ctx)
	// Lose every index object and damage one pack's header.
	if err := os.RemoveAll(filepath.Join(st.Root(), "index")); err != nil {
		t.Fatal(err)
	}
	r2 := openRepo(t, st, true, LockExclusive)
	stats, err := r2.RebuildIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Packs == 0 || stats.IndexesWritten == 0 || len(stats.UnreadablePacks) != 0 {
		t.Fatalf("rebuild: %+v", stats)
	}
	mustCheck(t, ctx, r2, true)
	verifySnapshot(t, ctx, r2, snap, fx)

	// A damaged header: the entries the old index had survive a rebuild.
	files := packFiles(t, st.Root())
	flipByte(t, files[0], -17)
	stats, err = r2.RebuildIndex(ctx)
	if err != nil || len(stats.UnreadablePacks) != 1 {
		t.Fatalf("rebuild with a damaged header: %+v %v", stats, err)
	}
	// The blobs themselves are intact and still loadable through the index.
	verifySnapshot(t, ctx, r2, snap, fx)
}
