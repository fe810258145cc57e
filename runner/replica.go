package runner

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
)

// A replica applies the newest snapshot its job's primary took, through the
// source (files, database, certificates into place). To notice that someone
// changed the replica's copy, it records the state it left: right after an
// apply it captures its own data as a snapshot tagged replica-state (with
// the applied snapshot's id in its metadata); before the next apply it
// captures again and compares the content. Deduplication makes both cheap.
const (
	// ReplicaStateTag marks a replica's record of its own state.
	ReplicaStateTag = "replica-state"
	// metaApplied is the applied snapshot's id in a replica-state snapshot,
	// metaAppliedTime its time (the primary may forget the snapshot itself
	// once it is applied; the position must survive that).
	metaApplied     = "runner.replica_applied"
	metaAppliedTime = "runner.replica_applied_time"
	// replicaProtectFor: a replica whose last record is older than this no
	// longer keeps the primary's retention from forgetting what it has not
	// applied (a decommissioned replica must not pin snapshots for ever).
	replicaProtectFor = 30 * 24 * time.Hour
)

func hasTag(sn *repo.Snapshot, tag string) bool { return slices.Contains(sn.Tags, tag) }

// BackupSnapshots lists a job's snapshots taken as backups (by its
// primary, or safety snapshots), oldest first: not replicas' records of
// their own state.
func BackupSnapshots(all []*repo.Snapshot) []*repo.Snapshot {
	var out []*repo.Snapshot
	for _, sn := range all {
		if !hasTag(sn, ReplicaStateTag) {
			out = append(out, sn)
		}
	}
	return out
}

// primarySnapshots lists the snapshots the primary's retention decides on:
// those taken by a primary. A replica's safety snapshots (its copy before
// an apply overwrote it) are not the primary's to forget.
func primarySnapshots(all []*repo.Snapshot) []*repo.Snapshot {
	var out []*repo.Snapshot
	for _, sn := range all {
		if !hasTag(sn, ReplicaStateTag) && sn.Role != string(config.RoleReplica) {
			out = append(out, sn)
		}
	}
	return out
}

// newestBackup is the newest snapshot a replica should apply: the newest
// backup that is not a safety snapshot (a safety snapshot holds a state
// someone chose to replace).
func newestBackup(all []*repo.Snapshot) *repo.Snapshot {
	for i := len(all) - 1; i >= 0; i-- {
		sn := all[i]
		if !hasTag(sn, ReplicaStateTag) && !hasTag(sn, SafetyTag) && sn.Role == string(config.RolePrimary) {
			return sn
		}
	}
	return nil
}

// unappliedSince returns the time of the oldest position among the
// replicas (each host's last applied snapshot): snapshots after it have not
// reached every replica yet and must not be forgotten.
func unappliedSince(all []*repo.Snapshot, now time.Time) (time.Time, bool) {
	latest := map[string]*repo.Snapshot{} // host -> newest replica-state record
	for _, sn := range all {
		if hasTag(sn, ReplicaStateTag) && now.Sub(sn.Time) < replicaProtectFor {
			if cur := latest[sn.Host]; cur == nil || sn.Time.After(cur.Time) {
				latest[sn.Host] = sn
			}
		}
	}
	var oldest time.Time
	found := false
	for _, rec := range latest {
		applied, err := time.Parse(time.RFC3339Nano, rec.Source[metaAppliedTime])
		if err != nil {
			continue
		}
		if !found || applied.Before(oldest) {
			oldest, found = applied, true
		}
	}
	return oldest, found
}

// stateChanges compares a replica's fresh capture with its record from
// right after the last apply, and lists what differs: paths of files and
// directories in tree items, names of stream items (a database's tables).
func stateChanges(ctx context.Context, r *repo.Repository, before, now *repo.Snapshot) ([]string, error) {
	prev := map[string]repo.Item{}
	for _, it := range before.Items {
		prev[it.Name] = it
	}
	var changes []string
	seen := map[string]bool{}
	for _, it := range now.Items {
		seen[it.Name] = true
		old, ok := prev[it.Name]
		switch {
		case !ok:
			changes = append(changes, it.Name+" (new)")
		case it.Kind != old.Kind:
			changes = append(changes, it.Name)
		case it.Kind == repo.ItemStream:
			if !slices.Equal(it.Content, old.Content) {
				changes = append(changes, it.Name)
			}
		case it.Tree != old.Tree:
			paths, err := treeDiff(ctx, r, old.Tree, it.Tree, it.Name, 20-len(changes))
			if err != nil {
				return nil, err
			}
			changes = append(changes, paths...)
		}
	}
	for _, it := range before.Items {
		if !seen[it.Name] {
			changes = append(changes, it.Name+" (gone)")
		}
	}
	return changes, nil
}

// treeDiff lists up to limit paths where two trees differ.
func treeDiff(ctx context.Context, r *repo.Repository, a, b repo.ID, prefix string, limit int) ([]string, error) {
	if limit <= 0 || a == b {
		return nil, nil
	}
	na, err := r.LoadTree(ctx, a)
	if err != nil {
		return nil, err
	}
	nb, err := r.LoadTree(ctx, b)
	if err != nil {
		return nil, err
	}
	byName := map[string]repo.Node{}
	for _, n := range na {
		byName[n.Name] = n
	}
	var out []string
	for _, n := range nb {
		if len(out) >= limit {
			return out, nil
		}
		p := path.Join(prefix, n.Name)
		o, ok := byName[n.Name]
		delete(byName, n.Name)
		switch {
		case !ok:
			out = append(out, p+" (new)")
		case o.Type == repo.NodeDir && n.Type == repo.NodeDir:
			sub, err := treeDiff(ctx, r, o.Subtree, n.Subtree, p, limit-len(out))
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case !sameNode(o, n):
			out = append(out, p)
		}
	}
	for name := range byName {
		if len(out) >= limit {
			break
		}
		out = append(out, path.Join(prefix, name)+" (deleted)")
	}
	return out, nil
}

// sameNode compares what a person would call a change: content, type,
// mode, owner, link target, modification time; not ctime, which a restore
// cannot set.
func sameNode(a, b repo.Node) bool {
	return a.Type == b.Type && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.Size == b.Size &&
		a.ModTime == b.ModTime && a.LinkTarget == b.LinkTarget && slices.Equal(a.Content, b.Content)
}

// replicate is a replica's run: apply the newest backup of the job unless
// it is applied already, after checking that the local copy is as the
// last apply left it.
func (e *Engine) replicate(ctx context.Context, j *config.Job, opts ApplyOptions, jp *JobPlan, st *JobState, storage repo.Storage, src PluginClient, res *JobResult) error {
	r, err := e.openRepo(ctx, j.Target, storage, repo.LockShared)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close(context.Background()) }()
	all, err := JobSnapshots(ctx, r, j.Name)
	if err != nil {
		return fmt.Errorf("list snapshots of %s: %w", j.Name, err)
	}
	target := newestBackup(all)
	if target == nil {
		res.Status, res.Reason = StatusSkipped, "replica: the primary has taken no snapshot of this job yet"
		return nil
	}
	if st != nil && st.Replica != nil && st.Replica.Snapshot == target.ID.String() {
		res.Status, res.Reason = StatusSkipped, fmt.Sprintf("replica is current: snapshot %s of %s applied %s",
			target.ID.Short(), target.Time.Format(time.RFC3339), st.Replica.Applied.Format(time.RFC3339))
		return nil
	}
	if opts.DryRun {
		res.Notes = append(res.Notes, fmt.Sprintf("would apply snapshot %s of %s (from %s)", target.ID.Short(), target.Time.Format(time.RFC3339), target.Host))
		notes, err := e.RestoreThroughSource(ctx, r, j, target, SourceRestoreOptions{Options: map[string]string{"force": "true"}, DryRun: true})
		res.Notes = append(res.Notes, notes...)
		return err
	}

	// What the last apply left, recorded by this host.
	var record *repo.Snapshot
	for _, sn := range all {
		if hasTag(sn, ReplicaStateTag) && sn.Host == Hostname() && st.Replica != nil && sn.Source[metaApplied] == st.Replica.Snapshot {
			record = sn
		}
	}
	// The current state, captured before anything is overwritten: it is
	// compared with the record and kept as a safety snapshot.
	var cur JobResult
	now, err := e.captureInto(ctx, r, j, src, captureSpec{tags: []string{SafetyTag}, meta: map[string]string{"runner.before_apply": target.ID.String()}, role: string(config.RoleReplica)}, &cur)
	if err != nil {
		return fmt.Errorf("capture the replica's current state before applying: %w", err)
	}
	if record != nil {
		changes, err := stateChanges(ctx, r, record, now)
		if err != nil {
			return fmt.Errorf("compare the replica with its last apply: %w", err)
		}
		if len(changes) > 0 && !jp.Forced {
			return fmt.Errorf("the replica's copy changed since it applied snapshot %s: %s; nothing was overwritten (its current state is snapshot %s); run runner apply -job %s -force to overwrite it",
				short(st.Replica.Snapshot), strings.Join(changes, ", "), now.ID.Short(), j.Name)
		}
		if len(changes) > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("overwriting local changes (-force): %s; they are kept in safety snapshot %s", strings.Join(changes, ", "), now.ID.Short()))
		}
	} else if st.Replica == nil {
		res.Notes = append(res.Notes, fmt.Sprintf("first apply on this replica; what was here is kept in safety snapshot %s", now.ID.Short()))
	}

	notes, err := e.RestoreThroughSource(ctx, r, j, target, SourceRestoreOptions{Options: map[string]string{"force": "true"}})
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return fmt.Errorf("apply snapshot %s: %w (the state from before is in safety snapshot %s)", target.ID.Short(), err, now.ID.Short())
	}
	var after JobResult
	rec, err := e.captureInto(ctx, r, j, src, captureSpec{tags: []string{ReplicaStateTag}, role: string(config.RoleReplica),
		meta: map[string]string{metaApplied: target.ID.String(), metaAppliedTime: target.Time.Format(time.RFC3339Nano)}}, &after)
	if err != nil {
		return fmt.Errorf("record the replica's state after applying %s: %w", target.ID.Short(), err)
	}
	// Only the newest record of this host matters; an unchanged replica's
	// safety snapshot holds nothing the repository lacks.
	for _, sn := range all {
		if hasTag(sn, ReplicaStateTag) && sn.Host == Hostname() {
			_ = r.DeleteSnapshot(ctx, sn.ID)
		}
	}
	if record != nil {
		if changes, err := stateChanges(ctx, r, record, now); err == nil && len(changes) == 0 {
			_ = r.DeleteSnapshot(ctx, now.ID)
		}
	}
	st.Replica = &ReplicaPosition{Snapshot: target.ID.String(), Time: target.Time, Applied: e.now()}
	res.Snapshot = target.ID.String()
	res.Files, res.Bytes, res.Items = int64(target.Summary.Files), int64(target.Summary.Bytes), len(target.Items)
	res.Notes = append(res.Notes, fmt.Sprintf("applied snapshot %s of %s (from %s); state recorded as %s",
		target.ID.Short(), target.Time.Format(time.RFC3339), target.Host, rec.ID.Short()))
	return nil
}
