package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/archiver"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// SourceRestoreOptions steer a restore through the job's source plugin
// (the source's Apply), which puts the data back where it belongs: a
// database into its server, for instance.
type SourceRestoreOptions struct {
	// Options are the source's restore options, e.g. {"database": "copy",
	// "force": "true"} for the mysql source.
	Options map[string]string
	// Destination, if set, asks the source to restore beside the live data,
	// under this directory, instead of into place.
	Destination string
	DryRun      bool
	// Staging, if set, keeps the staged tree items for a later call on the
	// same snapshot (a dry run, then the restore): each tree is restored
	// once. The caller closes it. Without it, a call stages and removes its
	// own.
	Staging *Staging
}

// Staging holds the tree items of one snapshot restored by the host for
// restores through the source, under state_dir/restore.
type Staging struct {
	e     *Engine
	dir   string
	roots map[int]string // item index -> restored root
}

// NewStaging returns an empty staging area; Close removes it.
func (e *Engine) NewStaging() *Staging { return &Staging{e: e, roots: map[int]string{}} }

// Close removes what was staged.
func (st *Staging) Close() error {
	if st.dir == "" {
		return nil
	}
	return os.RemoveAll(st.dir)
}

// tree restores item i of a snapshot (verifying every chunk), unless it is
// staged already, and returns the restored root.
func (st *Staging) tree(ctx context.Context, r *repo.Repository, i int, it repo.Item) (string, error) {
	if root, ok := st.roots[i]; ok {
		return root, nil
	}
	if st.dir == "" {
		base := filepath.Join(st.e.Config.Runner.StateDir, "restore")
		if err := os.MkdirAll(base, 0o700); err != nil {
			return "", fmt.Errorf("staging directory: %w", err)
		}
		d, err := os.MkdirTemp(base, "stage-")
		if err != nil {
			return "", fmt.Errorf("staging directory: %w", err)
		}
		st.dir = d
	}
	dst := filepath.Join(st.dir, strconv.Itoa(i))
	if _, err := archiver.Restore(ctx, r, it, dst, archiver.RestoreOptions{Owners: os.Geteuid() == 0, Log: st.e.log(), Progress: &st.e.restored}); err != nil {
		return "", fmt.Errorf("stage item %q: %w", it.Name, err)
	}
	ents, err := os.ReadDir(dst)
	if err != nil || len(ents) != 1 {
		return "", fmt.Errorf("stage item %q: expected one top entry in %s (%v)", it.Name, dst, err)
	}
	st.roots[i] = filepath.Join(dst, ents[0].Name())
	return st.roots[i], nil
}

// RestoreThroughSource hands a snapshot's items to the job's source plugin,
// in their order: each stream item read from the repository (and verified
// chunk by chunk) as the plugin consumes it, each tree item restored and
// verified by the host first into a staging directory under
// state_dir/restore, whose path the plugin gets as the item's root (it
// moves the files into place). The staging directory is removed after.
func (e *Engine) RestoreThroughSource(ctx context.Context, r *repo.Repository, j *config.Job, sn *repo.Snapshot, o SourceRestoreOptions) (notes []string, err error) {
	if o.Destination != "" && !filepath.IsAbs(o.Destination) {
		return nil, fmt.Errorf("restore destination %q is not an absolute path", o.Destination)
	}
	var mu sync.Mutex
	note := func(n string) { mu.Lock(); notes = append(notes, n); mu.Unlock() }
	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()
	src, err := plugins.get(ctx, schema.KindSource, j.Source.Block.TypeName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Source.Address, err)
	}
	stage := o.Staging
	if stage == nil {
		stage = e.NewStaging()
		defer func() { _ = stage.Close() }()
	}
	rd := &snapshotItems{ctx: ctx, r: r, items: sn.Items, stage: stage}
	defer rd.finish()
	err = src.Apply(ctx, sdk.ApplyRequest{
		Instance:     instance(j.Source),
		SnapshotMeta: sn.Source,
		Destination:  o.Destination,
		Options:      o.Options,
		DryRun:       o.DryRun,
		Notes:        note,
	}, rd)
	if err != nil {
		if rerr := rd.err(); rerr != nil {
			return notes, fmt.Errorf("restore through %s: %w (reading the snapshot: %v)", j.Source.Address, err, rerr)
		}
		if strings.Contains(err.Error(), "cannot apply snapshots") {
			return notes, fmt.Errorf("the %s source cannot restore in place; give --to DIR: %w", j.Source.Block.TypeName, err)
		}
		return notes, fmt.Errorf("restore through %s: %w", j.Source.Address, err)
	}
	return notes, rd.err()
}

// snapshotItems is the host-side ItemReader of a restore: each stream item
// is read from the repository by a goroutine writing into a pipe, started
// when the plugin asks for the item and finished (or stopped) before the
// next one starts.
type snapshotItems struct {
	ctx   context.Context
	r     *repo.Repository
	items []repo.Item
	next  int
	stage *Staging

	pr   *io.PipeReader
	done chan struct{}
	mu   sync.Mutex
	fail error
}

func (s *snapshotItems) Next() (sdk.Item, io.Reader, error) {
	s.finish()
	if s.next >= len(s.items) {
		return sdk.Item{}, nil, io.EOF
	}
	it := s.items[s.next]
	s.next++
	if it.Kind == repo.ItemTree {
		root, err := s.stage.tree(s.ctx, s.r, s.next-1, it)
		if err != nil {
			s.setErr(err)
			return sdk.Item{}, nil, err
		}
		return sdk.Item{Name: it.Name, Kind: sdk.ItemTree, Tree: &sdk.TreeSpec{Root: root}}, strings.NewReader(""), nil
	}
	pr, pw := io.Pipe()
	s.pr, s.done = pr, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		_, err := archiver.RestoreStream(s.ctx, s.r, it, restoreCounter{pw, &s.stage.e.restored})
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			s.setErr(fmt.Errorf("item %q: %w", it.Name, err))
		}
		_ = pw.CloseWithError(err)
	}(s.done)
	return sdk.Item{Name: it.Name, Kind: sdk.ItemStream}, pr, nil
}

// finish stops the current item's reader, if any, and waits for it.
func (s *snapshotItems) finish() {
	if s.pr == nil {
		return
	}
	_ = s.pr.Close()
	<-s.done
	s.pr = nil
}

func (s *snapshotItems) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = err
	}
}

func (s *snapshotItems) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}
