package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoConfig is a config backing up data to a nas target at nas, with the
// state directory at state.
func repoConfig(t *testing.T, data, nas, state, extraTarget string) string {
	t.Helper()
	return writeConfig(t, map[string]string{"main.hcl": fmt.Sprintf(`
runner {
  state_dir = %q
}
target "nas" "home" {
  path = %q
%s
}
source "files" "data" {
  paths = [%q]
}
job "data" {
  source = source.files.data
  target = target.nas.home
}
`, state, nas, extraTarget, data)})
}

// makeTree builds a tree exercising what a restore must keep: nested and
// empty directories, empty/random/text files, symlinks, hardlinks, modes,
// owners and nanosecond times.
func makeTree(t *testing.T, root string, bigMiB int) {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"a/b/c", "empty/dir", "setgid"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(os.Chmod(filepath.Join(root, "setgid"), 0o2775))
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, name)
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	random := func(n int) []byte { b := make([]byte, n); rnd.Read(b); return b }
	write("empty.txt", nil, 0o644)
	write("a/text.txt", bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 5000), 0o640)
	write("a/b/random.bin", random(3<<20), 0o600)
	write("a/b/c/big.bin", random(bigMiB<<20), 0o644)
	write("setgid/script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	for i := 0; i < 50; i++ {
		write(fmt.Sprintf("a/small%02d.txt", i), []byte(strings.Repeat(fmt.Sprintf("line %d\n", i), i+1)), 0o644)
	}
	must(os.Symlink("text.txt", filepath.Join(root, "a/rel-link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "dangling")))
	must(os.Link(filepath.Join(root, "a/text.txt"), filepath.Join(root, "hard1")))
	must(os.Link(filepath.Join(root, "a/text.txt"), filepath.Join(root, "a/b/hard2")))
	must(os.Lchown(filepath.Join(root, "a/b/random.bin"), 1234, 5678))
	must(os.Lchown(filepath.Join(root, "a/rel-link"), 4321, 8765))
	// Times last, deepest first, so that creating entries does not move
	// the directories' times afterwards.
	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.UTC)
	var paths []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- {
		ts = ts.Add(time.Hour + 7)
		tv := []syscall.Timespec{syscall.NsecToTimespec(ts.UnixNano()), syscall.NsecToTimespec(ts.UnixNano())}
		// AT_SYMLINK_NOFOLLOW: set the link's own times.
		must(utimesNoFollow(paths[i], tv))
	}
}

type meta struct {
	Mode    fs.FileMode
	UID     uint32
	GID     uint32
	MtimeNs int64
	Size    int64
	Link    string
	Nlink   uint64
	Sum     string
}

// treeMeta describes every entry of a tree relative to its root.
func treeMeta(t *testing.T, root string) map[string]meta {
	t.Helper()
	out := map[string]meta{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		m := meta{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, MtimeNs: st.Mtim.Nano(), Nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m.Size = fi.Size()
			m.Sum = fmt.Sprintf("%x", b[:min(len(b), 16)]) + fmt.Sprint(len(b)) + fmt.Sprint(crc(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			m.Link, _ = os.Readlink(p)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func crc(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// repoDirs makes a test's base directory with data and nas in it, and
// names the state directory beside them.
func repoDirs(t *testing.T) (base, data, nas, state string) {
	t.Helper()
	base = t.TempDir()
	data, nas, state = filepath.Join(base, "data"), filepath.Join(base, "nas"), filepath.Join(base, "state")
	for _, d := range []string{data, nas} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base, data, nas, state
}

func applyJSON(t *testing.T, dir string) (result, map[string]any) {
	t.Helper()
	r := runner(t, nil, "-C", dir, "-json", "apply")
	var out struct {
		Jobs []map[string]any
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Jobs) != 1 {
		t.Fatalf("apply -json output: %v\n%s", err, r)
	}
	return r, out.Jobs[0]
}

// The repository round trip: back up a tree, restore it, and get the same
// bytes, modes, owners, nanosecond times, symlinks, hardlinks and empty
// directories. A second backup finds nothing new; check is clean.
func TestBackupRestoreRoundTrip(t *testing.T) {
	base := t.TempDir()
	data, nas, state, out := filepath.Join(base, "data"), filepath.Join(base, "nas"), filepath.Join(base, "state"), filepath.Join(base, "out")
	for _, d := range []string{data, nas} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	makeTree(t, data, 20)
	pw := filepath.Join(base, "pw")
	if err := os.WriteFile(pw, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := repoConfig(t, data, nas, state, fmt.Sprintf("  password_file = %q", pw))

	if r := runner(t, nil, "-C", dir, "apply"); r.code != 3 || !strings.Contains(r.stdout, "runner init target.nas.home") {
		t.Fatalf("apply before init must fail and say how to init: %s", r)
	}
	r := runner(t, nil, "-C", dir, "init", "target.nas.home")
	if r.code != 0 || !strings.Contains(r.stdout, "encrypted") || strings.Contains(r.stdout, "NOT") {
		t.Fatalf("init: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "init", "target.nas.home"); r.code != 1 || !strings.Contains(r.stderr, "already holds a repository") {
		t.Fatalf("second init must refuse: %s", r)
	}
	r, job := applyJSON(t, dir)
	if r.code != 0 || job["status"] != "success" {
		t.Fatalf("first backup: %s", r)
	}
	first := job["added_bytes"].(float64)
	if first < 20<<20 {
		t.Fatalf("first backup added only %v bytes", first)
	}
	r, job = applyJSON(t, dir)
	if r.code != 0 || job["added_bytes"].(float64) > 64<<10 {
		t.Fatalf("second backup of unchanged data added %v bytes: %s", job["added_bytes"], r)
	}
	r = runner(t, nil, "-C", dir, "snapshots", "data")
	if r.code != 0 || !strings.Contains(r.stdout, "2 snapshots of job data") {
		t.Fatalf("snapshots: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "check", "data", "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "No problems found") {
		t.Fatalf("check: %s", r)
	}
	r = runner(t, nil, "-C", dir, "restore", "data", "--to", out)
	if r.code != 0 {
		t.Fatalf("restore: %s", r)
	}
	restored := filepath.Join(out, filepath.Base(data))
	if d, err := exec.Command("diff", "-r", "--no-dereference", data, restored).CombinedOutput(); err != nil {
		t.Fatalf("diff -r: %v\n%s", err, d)
	}
	want, got := treeMeta(t, data), treeMeta(t, restored)
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing after restore", p)
			continue
		}
		if g != w {
			t.Errorf("%s: restored %+v, want %+v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: restored but not in the original", p)
		}
	}

	// A wrong passphrase is refused.
	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runner(t, nil, "-C", dir, "snapshots", "data"); r.code == 0 {
		t.Fatalf("snapshots with a wrong passphrase succeeded: %s", r)
	}
	// A passphrase file others can read is refused.
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runner(t, nil, "-C", dir, "snapshots", "data"); r.code == 0 || !strings.Contains(r.stderr, "readable by group or others") {
		t.Fatalf("a world-readable password_file was accepted: %s", r)
	}
}

// A flipped byte in a pack is found by check --read-data, which names the
// pack and the file; restoring the file fails loudly.
func TestCorruptPackFoundAndRestoreFails(t *testing.T) {
	base, data, nas, state := repoDirs(t)
	rnd := rand.New(rand.NewSource(2))
	b := make([]byte, 2<<20)
	rnd.Read(b)
	if err := os.WriteFile(filepath.Join(data, "precious.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := repoConfig(t, data, nas, state, "")
	if r := runner(t, nil, "-C", dir, "init", "target.nas.home"); r.code != 0 || !strings.Contains(r.stdout, "NOT encrypted") {
		t.Fatalf("init: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "apply"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	// Flip one byte in the middle of the biggest pack.
	var biggest string
	var size int64
	_ = filepath.WalkDir(filepath.Join(nas, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, _ := d.Info(); fi.Size() > size {
				biggest, size = p, fi.Size()
			}
		}
		return nil
	})
	if biggest == "" {
		t.Fatal("no pack found")
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := f.ReadAt(one, size/3); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0x40
	if _, err := f.WriteAt(one, size/3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r := runner(t, nil, "-C", dir, "check", "data")
	if r.code != 0 {
		t.Logf("structure check already objects: %s", r)
	}
	r = runner(t, nil, "-C", dir, "check", "data", "--read-data")
	if r.code != 1 {
		t.Fatalf("check --read-data must fail: %s", r)
	}
	mustContain(t, r, "PROBLEM", filepath.Base(biggest), "precious.bin")
	out := filepath.Join(base, "out")
	r = runner(t, nil, "-C", dir, "restore", "data", "--to", out)
	if r.code == 0 {
		t.Fatalf("restore of a damaged file succeeded: %s", r)
	}
	mustContain(t, r, "precious.bin")
	if got, err := os.ReadFile(filepath.Join(out, "data", "precious.bin")); err == nil && !bytes.Equal(got, b) {
		t.Fatal("restore left a file with wrong bytes under its real name")
	}
}

// kill -9 in the middle of a backup, then a new backup: the repository
// checks clean, and the second run uploads only what the first had not.
func TestKilledBackupResumes(t *testing.T) {
	_, data, nas, state := repoDirs(t)
	rnd := rand.New(rand.NewSource(3))
	const files, fileSize = 60, 4 << 20
	buf := make([]byte, fileSize)
	for i := 0; i < files; i++ {
		rnd.Read(buf)
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%03d.bin", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	total := float64(files * fileSize)
	dir := repoConfig(t, data, nas, state, "")
	if r := runner(t, nil, "-C", dir, "init", "target.nas.home"); r.code != 0 {
		t.Fatalf("init: %s", r)
	}
	cmd := runnerCmd(dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForPacks(t, cmd, nas, int64(total/3))
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	uploaded := float64(packBytes(nas))
	if uploaded >= total {
		t.Skipf("the backup finished before it could be killed (%v of %v bytes)", uploaded, total)
	}

	// The killed run left a stale lock of a dead process: it is taken over.
	r, job := applyJSON(t, dir)
	if r.code != 0 {
		t.Fatalf("backup after kill -9: %s", r)
	}
	added := job["added_bytes"].(float64)
	// What the first run had uploaded is reused: the second adds at most
	// the rest plus one pack of slack (a pack being written when killed).
	if added > total-uploaded+float64(20<<20) {
		t.Fatalf("second backup added %.0f bytes; the first had uploaded %.0f of %.0f", added, uploaded, total)
	}
	if r := runner(t, nil, "-C", dir, "check", "data", "--read-data"); r.code != 0 {
		t.Fatalf("check after kill -9 and resume: %s", r)
	}
}

// A files job restored into place: after changes, deletions and additions,
// runner restore JOB --force makes the tree exactly as it was (modes,
// owners, times, symlinks), after a safety snapshot that undoes it.
func TestFilesRestoreIntoPlace(t *testing.T) {
	_, data, nas, state := repoDirs(t)
	makeTree(t, data, 1)
	dir := repoConfig(t, data, nas, state, "")
	mustInit(t, dir)
	if r, job := applyJSON(t, dir); r.code != 0 || job["status"] != "success" {
		t.Fatalf("backup: %s", r)
	}
	want := treeMeta(t, data)

	// The live tree changes: a file rewritten, one deleted, one added.
	var victim string
	for rel, m := range want {
		if m.Mode.IsRegular() && m.Size > 0 && m.Nlink == 1 {
			victim = rel
			break
		}
	}
	if err := os.WriteFile(filepath.Join(data, victim), []byte("overwritten"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "added-later.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := treeMeta(t, data)

	r := runner(t, nil, "-C", dir, "restore", "data", "--force")
	if r.code != 0 {
		t.Fatalf("restore into place: %s", r)
	}
	mustContain(t, r, "would restore "+data, "1 deleted", "Safety snapshot")
	got := treeMeta(t, data)
	delete(got, ".")
	delete(want, ".")
	for rel, w := range want {
		if g, ok := got[rel]; !ok || g != w {
			t.Errorf("%s: %+v, want %+v", rel, g, w)
		}
	}
	if _, ok := got["added-later.txt"]; ok || len(got) != len(want) {
		t.Errorf("restored tree has %d entries, want %d (added-later.txt must be gone)", len(got), len(want))
	}

	// The safety snapshot brings the changed state back.
	var safety string
	for _, line := range strings.Split(r.stdout, "\n") {
		if i := strings.Index(line, "--snapshot "); i >= 0 {
			safety = strings.Fields(line[i+len("--snapshot "):])[0]
		}
	}
	if r := runner(t, nil, "-C", dir, "restore", "data", "--force", "--snapshot", safety, "--no-safety-snapshot"); r.code != 0 {
		t.Fatalf("undo: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(data, victim)); string(b) != "overwritten" {
		t.Errorf("after undoing, %s holds %q", victim, b)
	}
	if _, ok := treeMeta(t, data)["added-later.txt"]; !ok || len(treeMeta(t, data)) != len(changed) {
		t.Errorf("after undoing, the tree is not the changed one")
	}
}

// restore --sparse: a disk image's runs of zeros come back as holes, with
// the same bytes; without --to it is a usage error.
func TestSparseRestore(t *testing.T) {
	base, data, nas, state := repoDirs(t)
	rnd := rand.New(rand.NewSource(5))
	img := make([]byte, 40<<20)
	rnd.Read(img[:1<<20])
	rnd.Read(img[20<<20 : 21<<20])
	if err := os.WriteFile(filepath.Join(data, "disk.img"), img, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := repoConfig(t, data, nas, state, "")
	if r := runner(t, nil, "-C", dir, "init", "target.nas.home"); r.code != 0 {
		t.Fatalf("init: %s", r)
	}
	if r := runner(t, nil, "-C", dir, "apply"); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	out := filepath.Join(base, "out")
	r := runner(t, nil, "-C", dir, "restore", "data", "--to", out, "--sparse")
	if r.code != 0 {
		t.Fatalf("restore --sparse: %s", r)
	}
	mustContain(t, r, "left as holes")
	p := filepath.Join(out, "data", "disk.img")
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("restored image differs (err %v)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	// 2 MiB of data; the chunks where data and zeros meet are written whole.
	if st.Blocks*512 > 12<<20 {
		t.Errorf("sparse restore: the 40 MiB image with 2 MiB of data takes %d bytes on disk", st.Blocks*512)
	}
	r = runner(t, nil, "-C", dir, "restore", "data", "--sparse")
	if r.code != 1 || !strings.Contains(r.stderr, "--sparse needs --to DIR") {
		t.Fatalf("--sparse without --to: %s", r)
	}
}
