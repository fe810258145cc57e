package policies

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SnapshotInfo is what retention needs to know about one snapshot.
// IDs must be unique: SizeOf is asked about sets of them.
type SnapshotInfo struct {
	ID   string
	Time time.Time
	Tags []string
	// Size is the space the snapshot accounts for when Decide is given no
	// SizeOf: the usage of a set is then the sum of its Sizes. That is
	// exact only if Size is the snapshot's share of the data (each blob's
	// size divided among the snapshots that use it); with "bytes only
	// this snapshot holds" the sum underestimates, because data shared by
	// two forgotten snapshots is freed by neither alone. Pass a SizeOf
	// where the repository index can answer.
	Size int64
	// Unapplied marks a snapshot that a replica has not applied yet.
	// Forgetting it would break replication, so it is never forgotten.
	Unapplied bool
}

// Retention is the part of a policy that decides which snapshots to keep.
// Zero values switch a rule off.
type Retention struct {
	// KeepLast keeps the N newest snapshots.
	KeepLast int
	// The bucket rules keep, for each of the N most recent hours, days,
	// ISO weeks, months or years that have a snapshot, the newest snapshot
	// in it.
	KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly int
	// KeepWithin keeps every snapshot taken at or after now minus this
	// duration (calendar arithmetic: "1M" on 31 March reaches back to 28 or
	// 29 February). Nil or zero: off.
	KeepWithin *Duration
	// KeepTags keeps every snapshot carrying one of these tags.
	KeepTags []string
	// MaxSize is the job's quota in bytes, measured as the space its kept
	// snapshots hold together (see SizeOf). 0: no quota.
	MaxSize int64
	// MaxForgetsPerRun caps how many snapshots one run forgets, so that a
	// new or tightened policy spreads its deletions over several runs.
	// 0: no limit.
	MaxForgetsPerRun int
}

// SizeOf returns the space the snapshots with the given IDs hold together:
// the size of the union of the data they reference, each byte counted once
// however many of them share it. The engine computes it from the
// repository index. This is what makes the quota right for deduplicated
// data, where sizes do not add up: forgetting A alone may free nothing
// while forgetting A and B together frees much.
//
// Decide calls it with the IDs of sets it considers keeping, O(log n)
// times per run. It must be monotone (a subset never holds more than the
// set), which a union size always is; the order of ids means nothing.
type SizeOf func(ids []string) int64

// Decision is what retention decided for one snapshot, and why.
type Decision struct {
	Snapshot SnapshotInfo
	Keep     bool
	// Reasons lists every rule that had a say, in the order they were
	// applied: keep rules, protections, quota, max_forgets_per_run. The
	// last reason is the one that decided; earlier ones show what it
	// overrode (a snapshot kept by keep_daily and then forgotten for the
	// quota lists both).
	Reasons []string
}

// Reason is the reason that decided: the last one.
func (d Decision) Reason() string {
	if len(d.Reasons) == 0 {
		return ""
	}
	return d.Reasons[len(d.Reasons)-1]
}

// HasKeepRules reports whether any keep rule is set. Without one, every
// snapshot is kept, so a policy that sets only max_size is a pure quota.
func (r Retention) HasKeepRules() bool {
	return r.KeepLast > 0 || r.KeepHourly > 0 || r.KeepDaily > 0 || r.KeepWeekly > 0 ||
		r.KeepMonthly > 0 || r.KeepYearly > 0 || (r.KeepWithin != nil && !r.KeepWithin.IsZero()) ||
		len(r.KeepTags) > 0
}

// Reasons, spelled once so that tests and the plan agree.
const (
	reasonNoRules   = "keep: no keep rule set (everything is kept)"
	reasonNoMatch   = "forget: no keep rule matches"
	reasonNewest    = "keep: newest snapshot (never forgotten)"
	reasonUnapplied = "keep: not yet applied by a replica"
)

// bucketRule is one of the restic-style calendar rules: the key names the
// bucket a snapshot falls in, and is shown in the reason.
type bucketRule struct {
	name  string
	count int
	key   func(t time.Time) string
}

func (r Retention) bucketRules() []bucketRule {
	return []bucketRule{
		{"hourly", r.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02 15:00") }},
		{"daily", r.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", r.KeepWeekly, func(t time.Time) string {
			// ISO 8601 weeks start on Monday, and the last days of December
			// may belong to week 1 of the next year (and early January to
			// the last week of the previous one): the ISO year, not the
			// calendar year, goes in the key.
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", r.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", r.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	}
}

// Decide applies the retention policy to a job's snapshots at now and
// returns one decision per snapshot, oldest first (by time, then ID), so
// the result does not depend on the order of the input.
//
// The steps, each of which may add a reason:
//
//  1. Keep rules, as restic's "forget" applies them. keep_last keeps the N
//     newest. Each bucket rule walks the snapshots newest first and keeps
//     the newest snapshot of each of the N most recent buckets that have
//     one (an empty day does not use up one of keep_daily's N). Buckets
//     are calendar hours, days, ISO weeks, months and years on the wall
//     clock of now's location, so "daily" means the operator's local day.
//     keep_within keeps what is at most that old; keep_tags keeps what has
//     one of the tags. A snapshot is kept if any rule keeps it. With no
//     keep rule at all, everything is kept.
//  2. Protections: the newest snapshot and snapshots a replica has not
//     applied yet are kept whatever the rules say, and step 3 and 4 never
//     forget them.
//  3. Quota (MaxSize > 0): if the snapshots kept so far hold more than
//     MaxSize, the kept ones go, oldest first, until the rest fit. The
//     snapshots no rule keeps were already forgotten in step 1, so the
//     order is the one the issue asks for: those beyond the keep rules
//     first, then the oldest kept ones, never the newest nor an unapplied
//     one. The shortest such oldest-first run is chosen, found by binary
//     search (the usage is monotone in it). If the protected snapshots
//     alone are over the quota they stay, and say so.
//  4. MaxForgetsPerRun: of all the forgets, only the N oldest happen this
//     run; the others become keeps whose reason says they go next time.
//
// Without MaxForgetsPerRun, Decide is idempotent: deciding again on the
// kept snapshots with the same now forgets nothing. sizeOf may be nil; see
// SnapshotInfo.Size.
func (r Retention) Decide(snapshots []SnapshotInfo, now time.Time, sizeOf SizeOf) []Decision {
	ds := make([]Decision, len(snapshots))
	for i, s := range snapshots {
		ds[i] = Decision{Snapshot: s}
	}
	slices.SortStableFunc(ds, func(a, b Decision) int {
		if c := a.Snapshot.Time.Compare(b.Snapshot.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Snapshot.ID, b.Snapshot.ID)
	})
	if len(ds) == 0 {
		return ds
	}
	r.applyKeepRules(ds, now)

	// Step 2. The newest snapshot is the only copy of the latest state;
	// an unapplied one is what a replica still has to fetch.
	protected := make([]bool, len(ds))
	newest := len(ds) - 1
	for i := range ds {
		if i == newest {
			ds[i].keep(reasonNewest)
			protected[i] = true
		}
		if ds[i].Snapshot.Unapplied {
			ds[i].keep(reasonUnapplied)
			protected[i] = true
		}
	}

	if r.MaxSize > 0 {
		r.applyQuota(ds, protected, sizeOf)
	}

	if r.MaxForgetsPerRun > 0 {
		n := 0
		for i := range ds { // oldest first
			if ds[i].Keep {
				continue
			}
			if n++; n > r.MaxForgetsPerRun {
				ds[i].keep(fmt.Sprintf("keep: max_forgets_per_run %d reached (forget next run)", r.MaxForgetsPerRun))
			}
		}
	}
	return ds
}

func (d *Decision) keep(reason string) {
	d.Keep = true
	d.Reasons = append(d.Reasons, reason)
}

func (d *Decision) forget(reason string) {
	d.Keep = false
	d.Reasons = append(d.Reasons, reason)
}

// applyKeepRules is step 1 of Decide; ds is sorted oldest first.
func (r Retention) applyKeepRules(ds []Decision, now time.Time) {
	if !r.HasKeepRules() {
		for i := range ds {
			ds[i].keep(reasonNoRules)
		}
		return
	}
	loc := now.Location()
	for k, i := 1, len(ds)-1; k <= r.KeepLast && i >= 0; k, i = k+1, i-1 {
		ds[i].keep(fmt.Sprintf("keep: last #%d", k))
	}
	for _, rule := range r.bucketRules() {
		if rule.count <= 0 {
			continue
		}
		// Newest first, the first snapshot seen in a bucket is its newest.
		// Snapshots of one bucket are adjacent in time order, so comparing
		// with the previous key is enough.
		prev, k := "", 0
		for i := len(ds) - 1; i >= 0 && k < rule.count; i-- {
			key := rule.key(ds[i].Snapshot.Time.In(loc))
			if key == prev {
				continue
			}
			prev = key
			k++
			ds[i].keep(fmt.Sprintf("keep: %s #%d (%s)", rule.name, k, key))
		}
	}
	if r.KeepWithin != nil && !r.KeepWithin.IsZero() {
		cutoff := r.KeepWithin.SubtractFrom(now)
		for i := range ds {
			if !ds[i].Snapshot.Time.Before(cutoff) {
				ds[i].keep(fmt.Sprintf("keep: within %s (since %s)", r.KeepWithin, stamp(cutoff, loc)))
			}
		}
	}
	for _, tag := range r.KeepTags {
		for i := range ds {
			if slices.Contains(ds[i].Snapshot.Tags, tag) {
				ds[i].keep("keep: tag " + tag)
			}
		}
	}
	for i := range ds {
		if !ds[i].Keep {
			ds[i].forget(reasonNoMatch)
		}
	}
}

// applyQuota is step 3 of Decide.
func (r Retention) applyQuota(ds []Decision, protected []bool, sizeOf SizeOf) {
	// The candidates, oldest first: kept so far and not protected.
	var cand []int
	for i := range ds {
		if ds[i].Keep && !protected[i] {
			cand = append(cand, i)
		}
	}
	// usage(k) is what the kept set holds once the k oldest candidates
	// are gone.
	usage := func(k int) int64 {
		gone := make(map[int]bool, k)
		for _, i := range cand[:k] {
			gone[i] = true
		}
		var ids []string
		var sum int64
		for i := range ds {
			if ds[i].Keep && !gone[i] {
				ids = append(ids, ds[i].Snapshot.ID)
				sum += ds[i].Snapshot.Size
			}
		}
		if sizeOf != nil {
			return sizeOf(ids)
		}
		return sum
	}
	before := usage(0)
	if before <= r.MaxSize {
		return
	}
	// The smallest k with usage(k) <= MaxSize; usage never grows with k.
	k := len(cand)
	after := usage(k)
	if after <= r.MaxSize {
		lo, hi := 0, k // usage(lo) > MaxSize >= usage(hi)
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if usage(mid) <= r.MaxSize {
				hi = mid
			} else {
				lo = mid
			}
		}
		k = hi
	}
	u, q := quotaSizes(before, r.MaxSize)
	for _, i := range cand[:k] {
		ds[i].forget(fmt.Sprintf("forget: over quota %s > %s, oldest first", u, q))
	}
	if after > r.MaxSize {
		u, q := quotaSizes(after, r.MaxSize)
		for i := range ds {
			if protected[i] {
				ds[i].keep(fmt.Sprintf("keep: still over quota %s > %s, but only protected snapshots are left", u, q))
			}
		}
	}
}

// quotaSizes renders a usage and its quota for a reason, both in the same
// decimal unit: the smallest in which the quota reads below 10000, so a
// quota written "1000MB" reads "1000 MB" (quotas are written in decimal
// units, as disks are sold). If rounding would make an excess look equal
// to the quota, both are given in bytes.
func quotaSizes(usage, quota int64) (string, string) {
	units := []struct {
		n    int64
		name string
	}{{1, "B"}, {1e3, "KB"}, {1e6, "MB"}, {1e9, "GB"}, {1e12, "TB"}, {1e15, "PB"}, {1e18, "EB"}}
	u := units[0]
	for _, c := range units {
		u = c
		if quota/c.n < 10000 {
			break
		}
	}
	f := func(n int64) string {
		if n%u.n == 0 {
			return fmt.Sprintf("%d %s", n/u.n, u.name)
		}
		v := strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/float64(u.n)), ".0")
		return v + " " + u.name
	}
	a, b := f(usage), f(quota)
	if a == b && usage != quota {
		return fmt.Sprintf("%d B", usage), fmt.Sprintf("%d B", quota)
	}
	return a, b
}

// stamp formats t for a reason, on the wall clock of loc.
func stamp(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04")
}
