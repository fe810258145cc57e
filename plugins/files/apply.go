package files

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/backup-runner/runner/internal/mirror"
	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

var _ sdk.Applier = (*Files)(nil)

// Apply restores a snapshot's trees into place (runner restore without
// --to, and replicas): each item, named by the path it was captured from,
// is made exactly like the tree the host staged — files that did not exist
// then are deleted, changed ones replaced, modes, owners and times set —
// while paths the exclude patterns match are left alone, since they were
// never captured. With a destination, each path is recreated under it
// instead (DEST/srv/data for /srv/data).
//
// Every item is compared and its new files are copied beside it first;
// only when all of that worked is anything live changed, item by item.
func (*Files) Apply(ctx context.Context, req sdk.ApplyRequest, r sdk.ItemReader) error {
	label := config.Label(schema.KindSource, req.Instance)
	_, m, _, err := load(req.Instance)
	if err != nil {
		return err
	}
	for k := range req.Options {
		if k != "force" {
			return fmt.Errorf("%s: unknown restore option %q (the files source takes none)", label, k)
		}
	}
	type planned struct {
		dst string
		mi  *mirror.Mirror
	}
	var plans []planned
	defer func() {
		for _, p := range plans {
			p.mi.Abort()
		}
	}()
	for {
		it, body, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		if it.Kind != sdk.ItemTree || it.Tree == nil {
			if body != nil {
				_, _ = io.Copy(io.Discard, body)
			}
			return fmt.Errorf("%s: item %q is not a tree: the files source restores only trees", label, it.Name)
		}
		if !filepath.IsAbs(it.Name) {
			return fmt.Errorf("%s: item %q is not an absolute path, so it cannot go back into place", label, it.Name)
		}
		dst := filepath.Clean(it.Name)
		if req.Destination != "" {
			dst = filepath.Join(req.Destination, strings.TrimPrefix(dst, "/"))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		mi, err := mirror.Plan(it.Tree.Root, dst, m)
		if err != nil {
			return fmt.Errorf("%s: compare %s with the snapshot: %w", label, dst, err)
		}
		plans = append(plans, planned{dst, mi})
		verb := "restoring"
		if req.DryRun {
			verb = "would restore"
		}
		req.Note("%s %s: %s", verb, dst, mi.Summary())
		if !req.DryRun {
			if err := mi.Prepare(); err != nil {
				return fmt.Errorf("%s: prepare %s (nothing live was changed): %w", label, dst, err)
			}
		}
	}
	if req.DryRun {
		return nil
	}
	for i, p := range plans {
		left, err := p.mi.Commit()
		if err != nil {
			done := make([]string, 0, i)
			for _, q := range plans[:i] {
				done = append(done, q.dst)
			}
			return fmt.Errorf("%s: restore %s: %w (restored before it: %v; run the restore again)", label, p.dst, err, done)
		}
		for _, l := range left {
			req.Note("%s is not in the snapshot but holds excluded files: left in place", l)
		}
	}
	return nil
}
