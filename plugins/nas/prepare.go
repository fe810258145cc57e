package nas

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// writeTestSize is the size of the file the write test writes: enough to
// span more than one NFS/SMB packet header, small enough not to matter.
const writeTestSize = 4096

// mountRef counts this process's sessions on one mount point (by its real
// path). Jobs run in parallel may share a target: the mount must stay up
// until the last of them releases, and only then come down if this
// process mounted it. (Sessions in other processes are not counted; the
// built-in plugin serves one runner, in one process.)
type mountRef struct {
	point string     // real path of the mount point
	mu    sync.Mutex // held while deciding to mount or unmount
	users int        // sessions, and Prepares in progress, using the mount
	// mounter is set while this process has the mount up; it is what
	// takes it down again after the last user.
	mounter *mounter
}

var mountRefs = struct {
	sync.Mutex
	m map[string]*mountRef
}{m: map[string]*mountRef{}}

// refFor returns the counter of a mount point. Entries are never removed:
// there is one per mount point a runner ever used, and removing one could
// give two Prepares racing on the same point two counters.
func refFor(realPoint string) *mountRef {
	mountRefs.Lock()
	defer mountRefs.Unlock()
	r := mountRefs.m[realPoint]
	if r == nil {
		r = &mountRef{point: realPoint}
		mountRefs.m[realPoint] = r
	}
	return r
}

// release drops one user. After this process's last one it withdraws
// its claim on the mount, and unmounts it if a runner mounted it and no
// other runner process uses it (see claims).
func (r *mountRef) release(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users--
	if r.users > 0 {
		return nil
	}
	m := r.mounter
	r.mounter = nil // tried once; a failed unmount is reported, not retried
	cl, err := openClaims(r.point)
	if err != nil {
		if m != nil {
			return errors.Join(err, m.unmount(ctx, r.point))
		}
		return err
	}
	defer cl.close()
	if err := cl.remove(); err != nil {
		return fmt.Errorf("mount records: %w", err)
	}
	if m == nil || cl.others() > 0 {
		return nil
	}
	if err := m.unmount(ctx, r.point); err != nil {
		return err
	}
	return cl.setRunnerMounted(false)
}

// preparation is one Prepare: the checks in order, and what it brought up.
type preparation struct {
	label    string
	s        *settings
	readOnly bool

	realMount string    // the mount point with symlinks resolved
	mountDev  uint64    // device of the mounted file system
	ref       *mountRef // set once this Prepare counts as a user
}

// run brings the mount up and makes every check. On failure it gives up
// its use of the mount (unmounting what it mounted).
func (p *preparation) run(ctx context.Context) (err error) {
	if p.s.mount != "" {
		if err := p.bringUp(ctx); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				if uerr := p.ref.release(ctx); uerr != nil {
					err = errors.Join(err, fmt.Errorf("%s: %w", p.label, uerr))
				}
				p.ref = nil
			}
		}()
		if err := p.verifyMount(ctx); err != nil {
			return err
		}
	}
	if err := p.checkPath(ctx); err != nil {
		return err
	}
	if !p.readOnly {
		if err := p.writeTest(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (p *preparation) fail(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{p.label}, args...)...)
}

// bringUp mounts the mount point unless it is mounted already, and counts
// this Prepare as a user of it.
func (p *preparation) bringUp(ctx context.Context) error {
	mount := p.s.mount
	fi, err := os.Stat(mount)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p.fail("mount point %s does not exist", mount)
	case err != nil:
		return p.fail("mount point: %w", err)
	case !fi.IsDir():
		return p.fail("mount point %s is not a directory", mount)
	}
	// mountinfo lists real paths: a mount point reached through a
	// symlink is found by where it leads.
	if p.realMount, err = filepath.EvalSymlinks(mount); err != nil {
		return p.fail("mount point: %w", err)
	}
	ref := refFor(p.realMount)
	ref.mu.Lock()
	defer ref.mu.Unlock()
	ref.users++
	p.ref = ref
	if ref.users == 1 {
		err = p.claimAndMount(ctx, ref)
	} else {
		err = p.mountIfNeeded(ctx, ref)
	}
	if err != nil {
		ref.users--
		p.ref = nil
		return err
	}
	return nil
}

// claimAndMount is bringUp for this process's first user of the mount:
// under the machine-wide records (claims) it adopts a mount a runner made
// (also one whose run was killed), mounts if nothing is mounted, and
// registers this process as a user.
func (p *preparation) claimAndMount(ctx context.Context, ref *mountRef) error {
	cl, err := openClaims(p.realMount)
	if err != nil {
		return p.fail("%w", err)
	}
	defer cl.close()
	entries, err := readMountinfo()
	if err != nil {
		return p.fail("cannot tell whether %s is mounted: %w", p.s.mount, err)
	}
	if _, ok := mountAt(entries, p.realMount); ok {
		if cl.runnerMounted() && p.s.mounter.with != mountWithNone {
			// A runner mounted it: whichever runner process uses it last
			// (this one, if the one that mounted it was killed) unmounts.
			ref.mounter = p.s.mounter
		}
	} else if err := cl.setRunnerMounted(false); err != nil {
		return p.fail("mount records: %w", err)
	}
	if err := p.mountIfNeeded(ctx, ref); err != nil {
		return err
	}
	if ref.mounter != nil {
		if err := cl.setRunnerMounted(true); err != nil {
			m := ref.mounter
			ref.mounter = nil
			return errors.Join(p.fail("mount records: %w", err), m.unmount(ctx, p.realMount))
		}
	}
	if err := cl.add(); err != nil {
		return p.fail("mount records: %w", err)
	}
	return nil
}

// mountIfNeeded runs the mount command if nothing is mounted at the mount
// point. The caller holds ref.mu. A mount already there, whoever made it,
// is used as it is and left mounted.
func (p *preparation) mountIfNeeded(ctx context.Context, ref *mountRef) error {
	entries, err := readMountinfo()
	if err != nil {
		return p.fail("cannot tell whether %s is mounted: %w", p.s.mount, err)
	}
	if _, ok := mountAt(entries, p.realMount); ok || p.s.mounter.with == mountWithNone {
		// Not mounted with mount_with = "none": verifyMount refuses it.
		return nil
	}
	m := p.s.mounter
	merr := m.mount(ctx)
	// Whether the command succeeded or not (it may have timed out after
	// the kernel mounted), what is mounted now is ours to take down.
	entries, err = readMountinfo()
	if err != nil {
		err = p.fail("cannot tell whether %s is mounted: %w", p.s.mount, err)
		if merr != nil {
			err = errors.Join(p.fail("%w", merr), err)
		}
		return err
	}
	if _, ok := mountAt(entries, p.realMount); ok {
		ref.mounter = m
	}
	if merr == nil {
		return nil // if nothing was mounted after all, verifyMount says so
	}
	err = p.fail("%w", merr)
	if ref.mounter != nil {
		ref.mounter = nil
		if uerr := m.unmount(ctx, p.realMount); uerr != nil {
			err = errors.Join(err, p.fail("after the failed mount: %w", uerr))
		}
	}
	return err
}

// verifyMount checks, before anything is written, that a file system is
// really mounted at the mount point and that it is the expected one.
func (p *preparation) verifyMount(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return p.fail("%w", err)
	}
	mount := p.s.mount
	entries, err := readMountinfo()
	if err != nil {
		return p.fail("cannot tell whether %s is mounted: %w", mount, err)
	}
	entry, listed := mountAt(entries, p.realMount)
	fi, err := os.Stat(p.realMount)
	if err != nil {
		return p.fail("mount point: %w", err)
	}
	parent := filepath.Dir(p.realMount)
	pfi, err := os.Stat(parent)
	if err != nil {
		return p.fail("parent of the mount point: %w", err)
	}
	dev, uid, gid, ok := fileIDs(fi)
	pdev, _, _, pok := fileIDs(pfi)
	if !ok || !pok {
		return p.fail("cannot read the device and owner of %s on this system, so it cannot be verified as a mount point", mount)
	}
	// Both tests, because each alone can be fooled: a bind mount of a
	// directory of the parent's file system is listed but on the same
	// device, and a directory on a different device (a btrfs subvolume)
	// is not a mount.
	if dev == pdev || !listed {
		var seen []string
		if dev == pdev {
			seen = append(seen, "same device as "+parent)
		} else {
			seen = append(seen, fmt.Sprintf("device %s, %s is on %s", devString(dev), parent, devString(pdev)))
		}
		if listed {
			seen = append(seen, fmt.Sprintf("listed in %s as %s from %s", mountinfoPath, entry.FSType, entry.Source))
		} else {
			seen = append(seen, "not in "+mountinfoPath)
		}
		verb := "write to"
		if p.readOnly {
			verb = "read from"
		}
		return p.fail("%s is not a mount point (%s): refusing to %s the bare directory", mount, strings.Join(seen, "; "), verb)
	}
	p.mountDev = dev

	ex := p.s.expect
	if ex.fstype != "" && entry.FSType != ex.fstype {
		return p.fail("file system type of %s is %s (from %s), expected %s", mount, entry.FSType, entry.Source, ex.fstype)
	}
	if ex.uid != nil && uid != *ex.uid {
		return p.fail("owner of %s is uid %d, expected %d", mount, uid, *ex.uid)
	}
	if ex.gid != nil && gid != *ex.gid {
		return p.fail("group of %s is gid %d, expected %d", mount, gid, *ex.gid)
	}
	if ex.marker != "" {
		// Lstat: the marker is a file on the share, not something a
		// symlink on it points to.
		marker := filepath.Join(mount, ex.marker)
		if _, err := os.Lstat(marker); errors.Is(err, fs.ErrNotExist) {
			return p.fail("marker %s does not exist: is the right file system mounted at %s?", marker, mount)
		} else if err != nil {
			return p.fail("marker: %w", err)
		}
	}
	if !p.readOnly && entry.readOnly() {
		return p.fail("%s is mounted read-only", mount)
	}
	return nil
}

// checkPath checks that path is a directory on the mounted file system,
// creating it first if create_path allows.
func (p *preparation) checkPath(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return p.fail("%w", err)
	}
	path := p.s.path
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		switch {
		case !p.s.createPath:
			return p.fail("path %s does not exist (set create_path = true to have it created)", path)
		case p.readOnly:
			return p.fail("path %s does not exist (a read-only run does not create it)", path)
		}
		if err := p.create(path); err != nil {
			return err
		}
		fi, err = os.Stat(path)
	}
	switch {
	case err != nil:
		return p.fail("path: %w", err)
	case !fi.IsDir():
		return p.fail("path %s is not a directory", path)
	}
	if p.s.mount == "" {
		return nil
	}
	return p.onTheMount(path, path)
}

// onTheMount checks that dir (path, or its nearest existing ancestor) is
// on the mounted file system: under the mount point once symlinks are
// resolved, and on its device, not on a file system mounted inside it.
func (p *preparation) onTheMount(dir, path string) error {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return p.fail("path: %w", err)
	}
	if !within(realDir, p.realMount) {
		return p.fail("path %s (really %s) is not inside mount %s (really %s)", path, realDir, p.s.mount, p.realMount)
	}
	fi, err := os.Stat(realDir)
	if err != nil {
		return p.fail("path: %w", err)
	}
	if dev, _, _, ok := fileIDs(fi); ok && dev != p.mountDev {
		return p.fail("path %s is on another file system (device %s) than the one mounted at %s (device %s)", path, devString(dev), p.s.mount, devString(p.mountDev))
	}
	return nil
}

// create makes path after checking that the directories it would be made
// in are on the mounted file system.
func (p *preparation) create(path string) error {
	if p.s.mount != "" {
		anc := path
		for {
			_, err := os.Lstat(anc)
			if err == nil {
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return p.fail("path: %w", err)
			}
			anc = filepath.Dir(anc)
		}
		if err := p.onTheMount(anc, path); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(path, dirPerm); err != nil {
		if errors.Is(err, syscall.EROFS) {
			return p.readOnlyError()
		}
		return p.fail("create path: %w", err)
	}
	return nil
}

func (p *preparation) readOnlyError() error {
	if p.s.mount != "" {
		return p.fail("%s is mounted read-only", p.s.mount)
	}
	return p.fail("path %s is on a read-only file system", p.s.path)
}

// writeTest writes a small random file under path, syncs it, reads it
// back, compares and removes it: a share that mounts but does not store
// (full, quota, permissions, a server-side read-only export) fails here,
// before the backup starts, and not halfway through it. The file has the
// temporary prefix so that a crash leaves nothing List would show.
func (p *preparation) writeTest(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return p.fail("%w", err)
	}
	want := make([]byte, writeTestSize)
	if _, err := rand.Read(want); err != nil {
		return p.fail("write test: %w", err)
	}
	name := filepath.Join(p.s.path, tmpPrefix+"write-test-"+hex.EncodeToString(want[:8]))
	wrap := func(step string, err error) error {
		if errors.Is(err, syscall.EROFS) {
			return p.readOnlyError()
		}
		return p.fail("write test in %s: %s: %w", p.s.path, step, err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return wrap("create", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close() // the error that matters is already in err
		}
		if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = wrap("remove", rerr)
		}
	}()
	if _, err := f.Write(want); err != nil {
		return wrap("write", err)
	}
	if err := f.Sync(); err != nil {
		return wrap("sync", err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return wrap("close", cerr)
	}
	// Reading through a new descriptor asks the file system again rather
	// than a buffer of the one that wrote (as far as the client's cache
	// allows: NFS close-to-open consistency makes this a real read).
	got, err := os.ReadFile(name)
	if err != nil {
		return wrap("read back", err)
	}
	if !bytes.Equal(got, want) {
		return p.fail("write test in %s: read back %d bytes that differ from the %d written", p.s.path, len(got), len(want))
	}
	return nil
}
