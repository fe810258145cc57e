package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/backup-runner/runner/internal/repo/chunker"
)

// saveFile chunks data with the repository's chunker and saves the chunks.
func saveFile(ctx context.Context, r *Repository, data []byte) ([]ID, error) {
	c := chunker.New(r.ChunkerTable(), bytes.NewReader(data))
	var ids []ID
	for {
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		id, _, err := r.SaveBlob(ctx, DataBlob, chunk)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
}

// fixture is a small file tree: "dir/fN" files plus "top" at the root.
type fixture map[string][]byte

func makeFixture(seed int64, files int) fixture {
	f := fixture{}
	for i := 0; i < files; i++ {
		if i%2 == 0 {
			f[fmt.Sprintf("dir/f%d", i)] = randBytes(seed*1000+int64(i), 3000+i*997)
		} else {
			f[fmt.Sprintf("dir/f%d", i)] = compressible(seed*1000+int64(i), 5000+i*31)
		}
	}
	f["top"] = randBytes(seed, 20000)
	return f
}

// saveSnapshot stores fx as a tree snapshot (with a stream item too).
func saveSnapshot(ctx context.Context, r *Repository, job string, fx fixture) (ID, error) {
	sub := []Node{}
	root := []Node{}
	// In name order, so that pack contents (and so what prune must do) do
	// not depend on map iteration order.
	for _, name := range slices.Sorted(maps.Keys(fx)) {
		data := fx[name]
		ids, err := saveFile(ctx, r, data)
		if err != nil {
			return ID{}, err
		}
		n := Node{Name: path.Base(name), Type: NodeFile, Mode: 0o644, Size: uint64(len(data)), Content: ids, ModTime: 1}
		if path.Dir(name) == "dir" {
			sub = append(sub, n)
		} else {
			root = append(root, n)
		}
	}
	subID, err := r.SaveTree(ctx, sub)
	if err != nil {
		return ID{}, err
	}
	root = append(root, Node{Name: "dir", Type: NodeDir, Mode: 0o755, Subtree: subID})
	rootID, err := r.SaveTree(ctx, root)
	if err != nil {
		return ID{}, err
	}
	stream, err := saveFile(ctx, r, fx["top"])
	if err != nil {
		return ID{}, err
	}
	return r.SaveSnapshot(ctx, &Snapshot{Job: job, Host: "test", Time: time.Now(), Items: []Item{
		{Name: "files", Kind: ItemTree, Tree: rootID},
		{Name: "dump", Kind: ItemStream, Content: stream, Size: uint64(len(fx["top"]))},
	}})
}

// restoreSnapshot reads every file of a snapshot back.
func restoreSnapshot(ctx context.Context, r *Repository, id ID) (fixture, error) {
	sn, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	out := fixture{}
	var walk func(tree ID, dir string) error
	walk = func(tree ID, dir string) error {
		nodes, err := r.LoadTree(ctx, tree)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			p := path.Join(dir, n.Name)
			switch n.Type {
			case NodeDir:
				if err := walk(n.Subtree, p); err != nil {
					return err
				}
			case NodeFile:
				var buf []byte
				for _, cid := range n.Content {
					b, err := r.LoadBlob(ctx, DataBlob, cid, nil)
					if err != nil {
						return err
					}
					buf = append(buf, b...)
				}
				out[p] = buf
			}
		}
		return nil
	}
	for _, it := range sn.Items {
		if it.Kind == ItemTree {
			if err := walk(it.Tree, ""); err != nil {
				return nil, err
			}
		} else {
			var buf []byte
			for _, cid := range it.Content {
				b, err := r.LoadBlob(ctx, DataBlob, cid, nil)
				if err != nil {
					return nil, err
				}
				buf = append(buf, b...)
			}
			if !bytes.Equal(buf, out["top"]) {
				return nil, fmt.Errorf("stream item differs from the file it was made from")
			}
		}
	}
	return out, nil
}

func verifySnapshot(t *testing.T, ctx context.Context, r *Repository, id ID, want fixture) {
	t.Helper()
	got, err := restoreSnapshot(ctx, r, id)
	if err != nil {
		t.Fatalf("restore snapshot %s: %v", id.Short(), err)
	}
	if len(got) != len(want) {
		t.Fatalf("snapshot %s has %d files, want %d", id.Short(), len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Fatalf("snapshot %s: file %s differs", id.Short(), name)
		}
	}
}

func mustCheck(t *testing.T, ctx context.Context, r *Repository, readData bool) *CheckReport {
	t.Helper()
	rep, err := r.Check(ctx, CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		for _, p := range rep.Problems {
			t.Errorf("check problem: %s", p)
		}
		t.FailNow()
	}
	return rep
}
