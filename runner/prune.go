package runner

import (
	"context"
	"fmt"

	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/policies"
)

// pruneSession frees the space of the snapshots a run forgot, on a target
// still up. It takes the repository's exclusive lock; when another process
// uses the repository the prune is left for a later run or runner prune:
// forgotten snapshots stay forgotten, only their space waits.
func (e *Engine) pruneSession(ctx context.Context, ts *TargetSession) (string, error) {
	if ctx.Err() != nil {
		return "", fmt.Errorf("prune of %s skipped: the run was interrupted; runner prune or the next forget frees the space", ts.target.Address)
	}
	r, err := e.OpenRepository(ctx, ts, repo.LockExclusive)
	if err != nil {
		return "", fmt.Errorf("prune of %s: %w (the space is freed by a later run or runner prune)", ts.target.Address, err)
	}
	st, err := r.Prune(ctx, repo.PruneOptions{})
	if cerr := r.Close(context.Background()); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("prune of %s: %w", ts.target.Address, err)
	}
	e.log().Info("pruned", "target", ts.target.Address, "deleted_bytes", st.BytesDeleted, "repacked_bytes", st.BytesRepacked)
	return fmt.Sprintf("pruned %s: %s freed (%d packs deleted, %d repacked)", ts.target.Address,
		policies.FormatSize(st.BytesDeleted-st.BytesRepacked), st.PacksDeleted, st.PacksRepacked), nil
}
