package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runner plan -out p && runner apply p applies exactly the plan: the
// snapshot it announced and the forgets it listed. A plan made before the
// configuration or the job's state changed is refused, changing nothing.
func TestSavedPlanIsAppliedExactlyOrRefused(t *testing.T) {
	data, nas := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
target "nas" "home" {
  path = %q
}
source "files" "data" {
  paths = [%q]
}
policy "two" {
  keep_last = 2
}
job "data" {
  source = source.files.data
  target = target.nas.home
  policy = policy.two
}
`, nas, data)
	dir := writeConfig(t, map[string]string{"main.hcl": cfg})
	mustInit(t, dir)
	for i := 0; i < 2; i++ {
		if r := runner(t, nil, "-C", dir, "apply"); r.code != 0 {
			t.Fatalf("apply %d: %s", i, r)
		}
	}
	snapshots := func() []string {
		t.Helper()
		r := runner(t, nil, "-C", dir, "-json", "snapshots", "data")
		var sns []struct{ ID string }
		if err := json.Unmarshal([]byte(r.stdout), &sns); err != nil {
			t.Fatalf("snapshots: %v\n%s", err, r)
		}
		var ids []string
		for _, s := range sns {
			ids = append(ids, s.ID)
		}
		return ids
	}
	before := snapshots()

	plan := filepath.Join(t.TempDir(), "plan.json")
	r := runner(t, nil, "-C", dir, "plan", "-out", plan, "-detailed-exitcode")
	if r.code != 2 {
		t.Fatalf("plan -detailed-exitcode with something to do: %s", r)
	}
	mustContain(t, r, "- forget "+before[0][:8], "no keep rule matches", "- prune target.nas.home", "Saved the plan")

	// A changed configuration makes the plan stale.
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg+"\n# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runner(t, nil, "-C", dir, "apply", plan)
	if r.code != 1 || !strings.Contains(r.stderr, "is stale: the configuration") {
		t.Fatalf("apply of a plan made from another configuration: %s", r)
	}
	if got := snapshots(); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Fatalf("a refused plan changed the snapshots: %v -> %v", before, got)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The same configuration again: the plan is applied, exactly.
	r = runner(t, nil, "-C", dir, "-json", "apply", plan)
	if r.code != 0 {
		t.Fatalf("apply of the saved plan: %s", r)
	}
	var out struct {
		Jobs []struct {
			Status    string
			Snapshot  string
			Forgotten []struct{ Snapshot string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Jobs) != 1 {
		t.Fatalf("apply -json: %v\n%s", err, r)
	}
	j := out.Jobs[0]
	if j.Status != "success" || len(j.Forgotten) != 1 || j.Forgotten[0].Snapshot != before[0] {
		t.Fatalf("applied: %+v (the plan forgot %s)", j, before[0][:8])
	}
	if got := snapshots(); strings.Join(got, " ") != before[1]+" "+j.Snapshot {
		t.Fatalf("snapshots after the plan: %v", got)
	}

	// The job ran since: applying the plan again is refused.
	r = runner(t, nil, "-C", dir, "apply", plan)
	if r.code != 1 || !strings.Contains(r.stderr, "job data ran or its state changed") {
		t.Fatalf("second apply of the same plan: %s", r)
	}
}
