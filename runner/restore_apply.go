package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	DryRun  bool
}

// RestoreThroughSource hands a snapshot's items to the job's source plugin,
// in their order, each stream item read from the repository (and verified
// chunk by chunk) as the plugin consumes it. It returns the plugin's notes.
func (e *Engine) RestoreThroughSource(ctx context.Context, r *repo.Repository, j *config.Job, sn *repo.Snapshot, o SourceRestoreOptions) error {
	for _, it := range sn.Items {
		if it.Kind != repo.ItemStream {
			return fmt.Errorf("snapshot %s of %s holds the tree item %q: the %s source restores only streams this way; give --to DIR to restore its files",
				sn.ID.Short(), j.Name, it.Name, j.Source.Block.TypeName)
		}
	}
	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()
	src, err := plugins.get(ctx, schema.KindSource, j.Source.Block.TypeName)
	if err != nil {
		return fmt.Errorf("%s: %w", j.Source.Address, err)
	}
	rd := &snapshotItems{ctx: ctx, r: r, items: sn.Items}
	defer rd.close()
	err = src.Apply(ctx, sdk.ApplyRequest{
		Instance:     instance(j.Source),
		SnapshotMeta: sn.Source,
		Options:      o.Options,
		DryRun:       o.DryRun,
	}, rd)
	if err != nil {
		if rerr := rd.err(); rerr != nil {
			return fmt.Errorf("restore through %s: %w (reading the snapshot: %v)", j.Source.Address, err, rerr)
		}
		if strings.Contains(err.Error(), "cannot apply snapshots") {
			return fmt.Errorf("the %s source cannot restore in place; give --to DIR: %w", j.Source.Block.TypeName, err)
		}
		return fmt.Errorf("restore through %s: %w", j.Source.Address, err)
	}
	return rd.err()
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
	pr, pw := io.Pipe()
	s.pr, s.done = pr, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		_, err := archiver.RestoreStream(s.ctx, s.r, it, pw)
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			s.mu.Lock()
			if s.fail == nil {
				s.fail = fmt.Errorf("item %q: %w", it.Name, err)
			}
			s.mu.Unlock()
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

func (s *snapshotItems) close() { s.finish() }

func (s *snapshotItems) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}
