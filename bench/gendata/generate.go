package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// generate writes the dataset under dir, which may already hold other
// files (the WordPress copy); generated paths must not exist yet.
func (ds *dataset) generate(dir string, workers int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range ds.Dirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if workers < 1 {
		workers = 1
	}
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range jobs {
				if err := ds.writeFile(dir, ds.Files[i], buf); err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for i, f := range ds.Files {
		if f.Symlink == "" && f.HardlinkOf < 0 {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	for _, f := range ds.Files {
		p := filepath.Join(dir, f.Rel)
		switch {
		case f.Symlink != "":
			if err := os.Symlink(f.Symlink, p); err != nil {
				return err
			}
			if err := lutimes(p, f.Mtime); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		case f.HardlinkOf >= 0:
			if err := os.Link(filepath.Join(dir, ds.Files[f.HardlinkOf].Rel), p); err != nil {
				return err
			}
		}
	}
	return ds.fixDirTimes(dir, nil)
}

// writeFile writes a regular file's content and metadata.
func (ds *dataset) writeFile(dir string, f fileSpec, buf []byte) error {
	p := filepath.Join(dir, f.Rel)
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, io.LimitReader(contentReader(f.Kind, f.Seed), f.Size), buf); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return setMeta(p, f.Mode, f.UID, f.GID, f.Mtime)
}

func setMeta(p string, mode fs.FileMode, uid, gid int, mtime int64) error {
	if os.Geteuid() == 0 {
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	t := time.Unix(0, mtime)
	return os.Chtimes(p, t, t)
}

// fixDirTimes sets the generated directories' modes and times, children
// before parents; only those in only (and their parents) when only is not
// nil. The root itself is included.
func (ds *dataset) fixDirTimes(dir string, only map[string]bool) error {
	dirs := append([]string{"."}, ds.Dirs...)
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if only != nil && !only[d] {
			continue
		}
		p := filepath.Join(dir, d)
		mode := fs.FileMode(0o755)
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		t := time.Unix(0, ds.dirMtime(d))
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return nil
}

type mutateStats struct {
	modified, added, deleted     int
	modBytes, addBytes, delBytes int64
	total                        int64
}

// plan chooses, deterministically, the files the ~1% change modifies and
// deletes, and the files it adds.
func (ds *dataset) plan() (mod, del []int, add []fileSpec, regionLen int64) {
	protected := map[string]bool{}
	for _, f := range ds.Files {
		if f.HardlinkOf >= 0 {
			protected[ds.Files[f.HardlinkOf].Rel] = true
		}
		if f.Symlink != "" {
			protected[path.Join(path.Dir(f.Rel), f.Symlink)] = true
		}
	}
	var cand []int
	for i, f := range ds.Files {
		if f.Symlink == "" && f.HardlinkOf < 0 && !protected[f.Rel] {
			cand = append(cand, i)
		}
	}
	r := newRand(ds.Seed, 99)
	order := r.Perm(len(cand))
	nMod := max(1, len(ds.Files)/100)
	nNew := max(1, len(ds.Files)/1000)
	budget := ds.Total / 100
	// Small files are mostly rewritten whole, large ones in part.
	regionLen = max(4096, 4*budget/int64(nMod))
	var written int64
	k := 0
	for ; k < len(order) && (len(mod) < nMod || (written < budget && len(mod) < 2*nMod)); k++ {
		i := cand[order[k]]
		mod = append(mod, i)
		written += min(regionLen, max(ds.Files[i].Size, 1))
	}
	for ; k < len(order) && len(del) < nNew; k++ {
		del = append(del, cand[order[k]])
	}
	for j := 0; j < nNew && len(cand) > 0; j++ {
		src := ds.Files[cand[r.IntN(len(cand))]]
		add = append(add, fileSpec{Rel: fmt.Sprintf("%s/bench-new-%d%s", path.Dir(src.Rel), j, path.Ext(src.Rel)),
			Kind: src.Kind, Size: src.Size, Seed: r.Uint64(), Mode: 0o644, Mtime: src.Mtime + 400*86400*1e9, HardlinkOf: -1})
	}
	return mod, del, add, regionLen
}

// mutate changes about 1% of the dataset: rewrites a region of some files
// (appends to logs), adds a few files and deletes a few.
func (ds *dataset) mutate(dir string) (mutateStats, error) {
	st := mutateStats{total: ds.Total}
	mod, del, add, regionLen := ds.plan()
	buf := make([]byte, 1<<20)
	for _, i := range mod {
		f := ds.Files[i]
		p := filepath.Join(dir, f.Rel)
		r := newRand(ds.Seed, 7, uint64(i))
		n := min(regionLen, f.Size)
		if n == 0 {
			n = 100
		}
		out, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return st, err
		}
		off := f.Size // logs and empty files grow at the end
		if f.Kind != kLog && f.Size > 0 {
			off = r.Int64N(f.Size - n + 1)
		}
		if _, err := out.Seek(off, io.SeekStart); err != nil {
			out.Close()
			return st, err
		}
		if _, err := io.CopyBuffer(out, io.LimitReader(contentReader(f.Kind, r.Uint64()), n), buf); err != nil {
			out.Close()
			return st, err
		}
		if err := out.Close(); err != nil {
			return st, err
		}
		t := time.Unix(0, f.Mtime+400*86400*1e9)
		if err := os.Chtimes(p, t, t); err != nil {
			return st, err
		}
		st.modified++
		st.modBytes += n
	}
	for _, i := range del {
		if err := os.Remove(filepath.Join(dir, ds.Files[i].Rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, err
		}
		st.deleted++
		st.delBytes += ds.Files[i].Size
	}
	for _, f := range add {
		if err := ds.writeFile(dir, f, buf); err != nil {
			return st, err
		}
		st.added++
		st.addBytes += f.Size
	}
	return st, nil
}

// revert undoes mutate (or a partial one): it rewrites the modified and
// deleted files from their description, removes the added ones and resets
// the times of the directories involved. It is harmless on an unchanged
// dataset.
func (ds *dataset) revert(dir string) error {
	mod, del, add, _ := ds.plan()
	buf := make([]byte, 1<<20)
	touched := map[string]bool{}
	mark := func(rel string) {
		for d := path.Dir(rel); ; d = path.Dir(d) {
			touched[d] = true
			if d == "." {
				break
			}
		}
	}
	for _, i := range append(mod, del...) {
		if err := ds.writeFile(dir, ds.Files[i], buf); err != nil {
			return err
		}
		mark(ds.Files[i].Rel)
	}
	for _, f := range add {
		if err := os.Remove(filepath.Join(dir, f.Rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		mark(f.Rel)
	}
	return ds.fixDirTimes(dir, touched)
}
