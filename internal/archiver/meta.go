//go:build linux

package archiver

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/backup-runner/runner/internal/repo"
)

// nodeFromStat fills a node's metadata from st. Size is set for regular
// files only and hardlink identity only for non-directories with more than
// one link: anything else would change a tree (and so defeat its
// deduplication) without telling a restorer anything it needs.
func (a *Archiver) nodeFromStat(name string, st *unix.Stat_t) repo.Node {
	n := repo.Node{
		Name:       name,
		Mode:       st.Mode & 0o7777,
		UID:        st.Uid,
		GID:        st.Gid,
		User:       a.names.user(st.Uid),
		Group:      a.names.group(st.Gid),
		ModTime:    st.Mtim.Nano(),
		ChangeTime: st.Ctim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = repo.NodeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = repo.NodeDir
	case unix.S_IFLNK:
		n.Type = repo.NodeSymlink
	case unix.S_IFBLK:
		n.Type = repo.NodeDevice
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFCHR:
		n.Type = repo.NodeCharDevice
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFIFO:
		n.Type = repo.NodeFIFO
	case unix.S_IFSOCK:
		n.Type = repo.NodeSocket
	}
	if n.Type != repo.NodeDir && st.Nlink > 1 {
		n.Device, n.Inode, n.Links = uint64(st.Dev), uint64(st.Ino), uint64(st.Nlink)
	}
	return n
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// names caches uid/gid -> name lookups: a tree has few distinct owners and
// a lookup may read /etc/passwd or ask NSS each time.
type names struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func (c *names) user(id uint32) string {
	return c.lookup(&c.users, id, func(s string) (string, error) {
		u, err := user.LookupId(s)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

func (c *names) group(id uint32) string {
	return c.lookup(&c.groups, id, func(s string) (string, error) {
		g, err := user.LookupGroupId(s)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (c *names) lookup(m *map[uint32]string, id uint32, fn func(string) (string, error)) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := (*m)[id]; ok {
		return name
	}
	if *m == nil {
		*m = make(map[uint32]string)
	}
	// An id without a name (a deleted user) is normal: remember "" too.
	name, err := fn(strconv.FormatUint(uint64(id), 10))
	if err != nil {
		name = ""
	}
	(*m)[id] = name
	return name
}

// xattrUnsupported reports errors that mean "no extended attributes here"
// rather than a failure: the filesystem has none, or one vanished between
// list and get.
func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA)
}

// readXattrs lists and reads extended attributes through list and get
// (path- or fd-based variants of listxattr/getxattr). The result is sorted
// by name, as trees require. The list is sized first: almost every file
// has no xattrs, and then this costs one syscall and no allocation.
// ERANGE (the list grew between the calls) starts over.
func readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]repo.Xattr, error) {
	var buf []byte
	var n int
	for try := 0; ; try++ {
		size, err := retryEINTR(func() (int, error) { return list(nil) })
		if err == nil && size > 0 {
			buf = make([]byte, size)
			n, err = retryEINTR(func() (int, error) { return list(buf) })
		}
		if err == nil && size == 0 {
			return nil, nil
		}
		if err == nil {
			break
		}
		if xattrUnsupported(err) {
			return nil, nil
		}
		if !errors.Is(err, unix.ERANGE) || try > 3 {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
	}
	var out []repo.Xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v, err := getXattr(get, name)
		if xattrUnsupported(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("get xattr %s: %w", name, err)
		}
		out = append(out, repo.Xattr{Name: name, Value: v})
	}
	slices.SortFunc(out, func(a, b repo.Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func getXattr(get func(string, []byte) (int, error), name string) ([]byte, error) {
	for try := 0; ; try++ {
		size, err := retryEINTR(func() (int, error) { return get(name, nil) })
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := retryEINTR(func() (int, error) { return get(name, buf) })
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, unix.ERANGE) || try > 3 {
			return nil, err
		}
	}
}

// pathXattrs reads the xattrs of path without following a symlink.
func pathXattrs(path string) ([]repo.Xattr, error) {
	return readXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// fdXattrs reads the xattrs of an open file.
func fdXattrs(fd int) ([]repo.Xattr, error) {
	return readXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// retryEINTR repeats a syscall interrupted by a signal (Go's runtime sends
// SIGURG for preemption, so EINTR does happen on slow filesystems).
func retryEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// openNoAtime opens path with flags plus O_NOATIME, so that a backup does
// not touch access times (and does not dirty every inode it reads). The
// kernel allows O_NOATIME only to the owner or a privileged process; for
// anyone else it fails with EPERM and we open without it.
func openNoAtime(path string, flags int) (int, error) {
	fd, err := retryEINTR(func() (int, error) { return unix.Open(path, flags|unix.O_NOATIME|unix.O_CLOEXEC, 0) })
	if errors.Is(err, unix.EPERM) {
		fd, err = retryEINTR(func() (int, error) { return unix.Open(path, flags|unix.O_CLOEXEC, 0) })
	}
	return fd, err
}

// fdReader reads from a raw file descriptor. It avoids os.File, which
// would try to register the (deliberately O_NONBLOCK) descriptor with the
// network poller.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := retryEINTR(func() (int, error) { return unix.Read(int(f), p) })
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
